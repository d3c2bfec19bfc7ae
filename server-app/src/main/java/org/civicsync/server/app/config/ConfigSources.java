package org.civicsync.server.app.config;

import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import picocli.CommandLine;
import picocli.CommandLine.Model.ArgSpec;
import picocli.CommandLine.Model.OptionSpec;

/**
 * Settings by precedence: a flag on the command line, then the environment variable
 * {@code CIVICSYNC_<NAME>} (the option's long name in capitals, {@code -} as {@code _}), then the
 * key {@code <name>} in the configuration file ({@code --config FILE} or {@code CIVICSYNC_CONFIG};
 * Java properties: {@code name = value} lines, {@code #} comments), then the option's default.
 * Picocli asks this provider for the value of every option not given as a flag.
 */
public final class ConfigSources implements CommandLine.IDefaultValueProvider {
  /** Where a setting's value came from. */
  public enum Source { FLAG, ENVIRONMENT, FILE, DEFAULT }

  /** Environment names that differ from the rule (kept for deployments that already use them). */
  private static final Map<String, String> ENV_EXCEPTIONS = Map.of("cors-origin", "CIVICSYNC_CORS_ORIGINS");

  private final Map<String, String> env;
  private final Map<String, String> fileValues;

  private ConfigSources(Map<String, String> env, Map<String, String> fileValues) {
    this.env = env;
    this.fileValues = fileValues;
  }

  /**
   * The sources for one run: the file named by {@code --config FILE} / {@code --config=FILE} in
   * {@code args}, else by {@code CIVICSYNC_CONFIG}, else none.
   * A file that cannot be read is an {@link IllegalArgumentException} with a message for people.
   */
  public static ConfigSources load(String[] args, Map<String, String> env) {
    Optional<Path> file = Optional.empty();
    for (int i = 0; i < args.length; i++) {
      if (args[i].equals("--config") && i + 1 < args.length) {
        file = Optional.of(Path.of(args[i + 1]));
      } else if (args[i].startsWith("--config=")) {
        file = Optional.of(Path.of(args[i].substring("--config=".length())));
      }
    }
    if (file.isEmpty()) {
      file = Optional.ofNullable(env.get("CIVICSYNC_CONFIG")).filter(v -> !v.isBlank()).map(Path::of);
    }
    Map<String, String> values = new LinkedHashMap<>();
    if (file.isPresent()) {
      Properties p = new Properties();
      try (Reader r = Files.newBufferedReader(file.get(), StandardCharsets.UTF_8)) {
        p.load(r);
      } catch (IOException e) {
        throw new IllegalArgumentException("cannot read the configuration file " + file.get() + ": " + e.getMessage(), e);
      }
      new TreeSet<>(p.stringPropertyNames()).forEach(k -> values.put(k.trim(), p.getProperty(k).trim()));
    }
    return new ConfigSources(Map.copyOf(env), values);
  }

  /** The environment variable of an option's long name without its dashes, e.g. {@code db-url} → {@code CIVICSYNC_DB_URL}. */
  public static String envName(String key) {
    return ENV_EXCEPTIONS.getOrDefault(key, "CIVICSYNC_" + key.toUpperCase(Locale.ROOT).replace('-', '_'));
  }

  /** The setting's key: its long option name without the leading dashes. */
  public static String key(OptionSpec o) {
    return o.longestName().replaceFirst("^--", "");
  }

  @Override
  public String defaultValue(ArgSpec arg) {
    if (!(arg instanceof OptionSpec o) || o.usageHelp() || o.versionHelp() || key(o).equals("config")) {
      return null;
    }
    return lookup(key(o)).orElse(null);
  }

  /** The value of a setting from the environment or the file (not flags, not defaults). */
  public Optional<String> lookup(String key) {
    String fromEnv = env.get(envName(key));
    if (fromEnv != null) {
      return Optional.of(fromEnv);
    }
    return Optional.ofNullable(fileValues.get(key));
  }

  /** Where {@code o}'s value came from in a parse. */
  public Source sourceOf(OptionSpec o, CommandLine.ParseResult parsed) {
    if (parsed.hasMatchedOption(o)) {
      return Source.FLAG;
    }
    if (env.containsKey(envName(key(o)))) {
      return Source.ENVIRONMENT;
    }
    return fileValues.containsKey(key(o)) ? Source.FILE : Source.DEFAULT;
  }

  /** Keys of the file that name no setting in {@code known} (a typo there would otherwise pass unnoticed). */
  public Set<String> unknownFileKeys(Set<String> known) {
    Set<String> out = new TreeSet<>(fileValues.keySet());
    out.removeAll(known);
    return out;
  }

}
