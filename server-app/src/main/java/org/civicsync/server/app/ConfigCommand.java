package org.civicsync.server.app;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Callable;
import org.civicsync.server.app.config.ConfigSources;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Option;

/** {@code civicsync config}: what the server would run with, and the table of every setting. */
@Command(name = "config", mixinStandardHelpOptions = true, description = "Check the server's configuration, or print the table of settings.",
    subcommands = {ConfigCommand.Check.class, ConfigCommand.Table.class})
final class ConfigCommand implements Runnable {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(System.out);
  }

  /** Settings that hold secrets: shown as set or not, never their value. */
  private static final Set<String> SECRETS = Set.of("db-password");

  @Command(name = "check", mixinStandardHelpOptions = true,
      description = "Validate the configuration from flags, environment and file; print each setting with where it came from. "
          + "Exit status 0 when valid, 2 when not.")
  static final class Check implements Callable<Integer> {
    @Mixin ServeOptions options = new ServeOptions();
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Option(names = "--connect", description = "Also connect to the database and to NATS (when configured), each with a short timeout.")
    boolean connect;

    @Override
    public Integer call() {
      List<String> problems = new ArrayList<>();
      Optional<ConfigSources> sources = ServeOptions.sources(spec);
      ServerConfig config = null;
      try {
        config = options.toConfig(spec);
      } catch (CommandLine.ParameterException e) {
        problems.add(e.getMessage());
      }
      CommandLine.ParseResult parsed = spec.commandLine().getParseResult();
      System.out.printf("%-28s %-44s %s%n", "setting", "value", "from");
      for (OptionSpec o : spec.options()) {
        String key = ConfigSources.key(o);
        if (o.usageHelp() || o.versionHelp() || key.equals("connect")) {
          continue;
        }
        Object v = o.getValue();
        String shown = v == null ? "(none)" : SECRETS.contains(key) ? "(set)" : String.valueOf(v);
        String from = sources.map(s -> s.sourceOf(o, parsed).name().toLowerCase(java.util.Locale.ROOT)).orElse("flag or default");
        System.out.printf("%-28s %-44s %s%n", key, shown, from);
      }
      System.out.printf("%-28s %-44s %s%n", "admin-token", config != null && config.adminToken().isPresent() ? "(set)" : "(generated at first start)",
          System.getenv("CIVICSYNC_ADMIN_TOKEN") != null ? "environment" : "file or none");
      if (config != null && connect) {
        problems.addAll(reach(config));
      }
      if (problems.isEmpty()) {
        System.out.println("The configuration is valid" + (connect ? " and every service it names answered." : "."));
        return 0;
      }
      problems.forEach(p -> System.err.println("problem: " + p));
      return 2;
    }

    private static List<String> reach(ServerConfig config) {
      List<String> problems = new ArrayList<>();
      try {
        Stores.open(config).close();
      } catch (RuntimeException e) {
        problems.add("the store: " + e.getMessage());
      }
      config.nats().ifPresent(n -> {
        io.nats.client.Options o = new io.nats.client.Options.Builder().server(n.url()).connectionTimeout(Duration.ofSeconds(3))
            .noReconnect().build();
        try (io.nats.client.Connection c = io.nats.client.Nats.connect(o)) {
          c.jetStreamManagement().getAccountStatistics();
        } catch (Exception e) {
          problems.add("NATS at " + n.url() + " (with JetStream): " + e.getMessage());
        }
      });
      return problems;
    }
  }

  @Command(name = "table", mixinStandardHelpOptions = true,
      description = "Print every setting of 'serve' as a Markdown table: flag, environment variable, file key, default, meaning.")
  static final class Table implements Runnable {
    @Override
    public void run() {
      System.out.print(markdown());
    }
  }

  /** The table docs/operations.md carries (a test keeps the two the same). */
  static String markdown() {
    CommandLine serve = new CommandLine(new Main()).getSubcommands().get("serve");
    StringBuilder b = new StringBuilder();
    b.append("| flag | environment | file key | default | meaning |\n| --- | --- | --- | --- | --- |\n");
    for (OptionSpec o : serve.getCommandSpec().options()) {
      if (o.usageHelp() || o.versionHelp()) {
        continue;
      }
      String key = ConfigSources.key(o);
      String env = key.equals("config") ? "`CIVICSYNC_CONFIG`" : "`" + ConfigSources.envName(key) + "`";
      String fileKey = key.equals("config") ? "—" : "`" + key + "`";
      String dflt = o.defaultValue() == null ? "—" : "`" + o.defaultValue() + "`";
      String meaning = String.join(" ", o.description()).replaceAll(" \\(default: [^)]*\\)", "").replace("${DEFAULT-VALUE}", String.valueOf(o.defaultValue()))
          .replace("|", "\\|");
      b.append("| `").append(o.longestName()).append("` | ").append(env).append(" | ").append(fileKey).append(" | ").append(dflt).append(" | ")
          .append(meaning).append(" |\n");
    }
    b.append("| — | `CIVICSYNC_ADMIN_TOKEN` | `admin-token` | generated at first start, printed once | The admin token (`csa_` and 43 base64url characters, or any long random string). |\n");
    b.append("| — | `CIVICSYNC_LOG_FORMAT` | — | `json` | `text` for lines a person reads at a terminal. |\n");
    b.append("| — | `CIVICSYNC_LOG_LEVEL` | — | `INFO` | The root log level (`DEBUG`, `INFO`, `WARN`, `ERROR`). |\n");
    return b.toString();
  }
}
