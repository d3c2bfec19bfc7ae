package org.civicsync.server.app;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import picocli.CommandLine;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * The settings of {@code serve} (and of {@code config check}, which checks them without serving).
 * Each comes from a flag, the environment or the configuration file
 * ({@link org.civicsync.server.app.config.ConfigSources}); {@link #toConfig} checks them all and
 * says what is wrong in words.
 */
final class ServeOptions {
  @Mixin Main.StoreOptions store = new Main.StoreOptions();

  @Option(names = "--config", paramLabel = "FILE",
      description = "A configuration file of `name = value` lines, one per setting. Flags and environment variables win over it.")
  Path config;

  @Option(names = "--port", defaultValue = "8080", description = "HTTP port (default: ${DEFAULT-VALUE}).")
  int port;

  @Option(names = "--host", defaultValue = "0.0.0.0", description = "Address to bind (default: ${DEFAULT-VALUE}).")
  String host;

  @Option(names = "--demo", defaultValue = "false", description = "Create tenant 'demo' with a demo user and print an enrollment code for it.")
  boolean demo;

  @Option(names = "--max-clock-skew-hours", defaultValue = "24",
      description = "How far a mutation's clock (hlc) may run ahead of the server's before it is rejected (default: ${DEFAULT-VALUE}).")
  long maxClockSkewHours;

  @Option(names = "--hold-window-hours", defaultValue = "120",
      description = "How long a mutation that arrived before an earlier one of its device waits before it is forced through (default: ${DEFAULT-VALUE}).")
  long holdWindowHours;

  @Option(names = "--compaction-horizon-days", defaultValue = "90",
      description = "Days after which tombstones and superseded log detail are compacted; devices whose cursor is older download"
          + " their data again (default: ${DEFAULT-VALUE}).")
  int compactionHorizonDays;

  @Option(names = "--token-ttl-hours", defaultValue = "24",
      description = "Hours a device token works before the device renews it with its key (default: ${DEFAULT-VALUE}).")
  long tokenTtlHours;

  @Option(names = "--rate-limit", defaultValue = "1200",
      description = "Requests per minute per token; a tenth of it per address without a token (default: ${DEFAULT-VALUE}).")
  int rateLimit;

  @Option(names = "--cors-origin", split = ",",
      description = "Browser origins allowed to call the API from elsewhere, comma-separated, e.g. https://clinic.example.org (default: none).")
  List<String> corsOrigins;

  @Option(names = "--nats-url", paramLabel = "URL",
      description = "Publish domain events to NATS JetStream at this URL, e.g. nats://127.0.0.1:4222 (default: no events).")
  String natsUrl;

  @Option(names = "--nats-stream", defaultValue = "CIVICSYNC", description = "The JetStream stream, created when missing (default: ${DEFAULT-VALUE}).")
  String natsStream;

  @Option(names = "--nats-max-age-days", defaultValue = "30",
      description = "How long the stream keeps events, in days; 0 keeps them for good (default: ${DEFAULT-VALUE}).")
  int natsMaxAgeDays;

  @Option(names = "--stream-heartbeat-seconds", defaultValue = "15",
      description = "Seconds between heartbeats on an idle live stream (default: ${DEFAULT-VALUE}).")
  int streamHeartbeatSeconds;

  @Option(names = "--web-dir", paramLabel = "DIR",
      description = "Serve the web app from this directory (e.g. web/dist while developing it) instead of the build inside the server.")
  Path webDir;

  @Option(names = "--max-body-bytes", defaultValue = "10485760", description = "Largest request body after decompression (default: ${DEFAULT-VALUE}).")
  long maxBodyBytes;

  /**
   * The server's configuration from these settings (and the admin token from
   * {@code CIVICSYNC_ADMIN_TOKEN} or the file's {@code admin-token}).
   *
   * @throws CommandLine.ParameterException naming the first setting that is out of range or malformed
   */
  ServerConfig toConfig(CommandLine.Model.CommandSpec spec) {
    CommandLine cli = spec.commandLine();
    java.util.Set<String> unknown = unknownFileKeys(spec);
    check(cli, unknown.isEmpty(), "the configuration file sets " + unknown + ", which are no settings (see civicsync config table)");
    check(cli, port >= 0 && port <= 65535, "--port must be from 0 to 65535, not " + port);
    check(cli, maxClockSkewHours >= 1, "--max-clock-skew-hours must be at least 1");
    check(cli, holdWindowHours >= 1, "--hold-window-hours must be at least 1");
    check(cli, compactionHorizonDays >= 1, "--compaction-horizon-days must be at least 1");
    check(cli, tokenTtlHours >= 1 && tokenTtlHours <= 24 * 366, "--token-ttl-hours must be from 1 to 8784");
    check(cli, rateLimit >= 1, "--rate-limit must be at least 1 request per minute");
    check(cli, maxBodyBytes >= 64 * 1024, "--max-body-bytes must be at least 65536");
    check(cli, natsMaxAgeDays >= 0, "--nats-max-age-days must not be negative");
    check(cli, streamHeartbeatSeconds >= 1 && streamHeartbeatSeconds <= 300, "--stream-heartbeat-seconds must be from 1 to 300");
    Optional<String> dbUrl = Optional.ofNullable(store.dbUrl).filter(s -> !s.isBlank());
    dbUrl.ifPresent(u -> check(cli, u.startsWith("jdbc:postgresql://"), "--db-url must be a jdbc:postgresql:// URL"));
    List<String> origins = corsOrigins == null ? List.of() : corsOrigins.stream().map(String::trim).filter(o -> !o.isEmpty()).toList();
    for (String o : origins) {
      check(cli, o.matches("https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?"), "--cors-origin takes origins like https://clinic.example.org, not " + o);
    }
    Optional<String> nats = Optional.ofNullable(natsUrl).filter(u -> !u.isBlank());
    nats.ifPresent(u -> check(cli, u.matches("(nats|tls)://.+(,(nats|tls)://.+)*"), "--nats-url must be nats://host:port or tls://host:port"));
    Optional<org.civicsync.server.nats.NatsSettings> natsSettings;
    try {
      natsSettings = nats.map(u -> {
        org.civicsync.server.nats.NatsSettings d = org.civicsync.server.nats.NatsSettings.defaults(u);
        return new org.civicsync.server.nats.NatsSettings(u, natsStream, d.subjects(), Duration.ofDays(natsMaxAgeDays), d.duplicateWindow(),
            d.replicas(), d.publishTimeout());
      });
    } catch (IllegalArgumentException e) {
      throw new CommandLine.ParameterException(cli, e.getMessage());
    }
    Optional<String> adminToken = Optional.ofNullable(System.getenv("CIVICSYNC_ADMIN_TOKEN")).filter(t -> !t.isBlank())
        .or(() -> sources(spec).flatMap(s -> s.lookup("admin-token")));
    return store.apply(ServerConfig.defaults()).withPort(port).withHost(host).withDemo(demo).withMaxBodyBytes(maxBodyBytes)
        .withMaxClockSkew(Duration.ofHours(maxClockSkewHours)).withHoldWindow(Duration.ofHours(holdWindowHours))
        .withAdminToken(adminToken).withWebDir(Optional.ofNullable(webDir)).withNats(natsSettings)
        .withStreamHeartbeat(Duration.ofSeconds(streamHeartbeatSeconds))
        .withCompactionHorizon(Duration.ofDays(compactionHorizonDays))
        .withSecurity(new ServerConfig.Security(Duration.ofHours(tokenTtlHours), rateLimit, origins));
  }

  /** Keys of the configuration file that name no setting of {@code spec}'s command. */
  static java.util.Set<String> unknownFileKeys(CommandLine.Model.CommandSpec spec) {
    java.util.Set<String> known = new java.util.TreeSet<>(List.of("admin-token"));
    spec.options().forEach(o -> known.add(org.civicsync.server.app.config.ConfigSources.key(o)));
    return sources(spec).map(s -> s.unknownFileKeys(known)).orElse(java.util.Set.of());
  }

  static Optional<org.civicsync.server.app.config.ConfigSources> sources(CommandLine.Model.CommandSpec spec) {
    return spec.defaultValueProvider() instanceof org.civicsync.server.app.config.ConfigSources s ? Optional.of(s) : Optional.empty();
  }

  private static void check(CommandLine cli, boolean ok, String message) {
    if (!ok) {
      throw new CommandLine.ParameterException(cli, message);
    }
  }

}
