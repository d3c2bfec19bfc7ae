package org.civicsync.server.app;

import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import org.civicsync.server.projection.ProjectionRebuilder;
import org.civicsync.server.store.ServerStore;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** The {@code civicsync} command line. */
@Command(name = "civicsync", mixinStandardHelpOptions = true, version = "CivicSync 0.1.0 (protocol v1)",
    description = "Offline-first sync infrastructure for public services.",
    subcommands = {Main.Serve.class, Main.RebuildProjections.class, Main.Compact.class, Main.EnrollmentCodeCommand.class, Main.Audit.class,
        Main.Keygen.class, Main.Sign.class, ClientCommand.class, ConfigCommand.class})
public final class Main implements Runnable {

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  public static void main(String[] args) {
    CommandLine cli;
    try {
      cli = commandLine(args, System.getenv());
    } catch (IllegalArgumentException e) {
      System.err.println(e.getMessage());
      System.exit(2);
      return;
    }
    System.exit(cli.execute(args));
  }

  @Override
  public void run() {
    spec.commandLine().usage(System.out);
  }

  /** Where the data lives; shared by every subcommand that opens the store. */
  static final class StoreOptions {
    @Option(names = "--data", paramLabel = "DIR", defaultValue = "civicsync-data",
        description = "Directory of the embedded SQLite database (default: ${DEFAULT-VALUE}).")
    Path dataDir;

    @Option(names = "--db-url", paramLabel = "JDBC_URL",
        description = "Use PostgreSQL instead of SQLite, e.g. jdbc:postgresql://127.0.0.1:5432/civicsync.")
    String dbUrl;

    @Option(names = "--db-user", description = "PostgreSQL user.")
    String dbUser;

    @Option(names = "--db-password", description = "PostgreSQL password (prefer the environment or the file: flags show in process lists).")
    String dbPassword;

    @Option(names = "--db-schema", defaultValue = "civicsync", description = "PostgreSQL schema (default: ${DEFAULT-VALUE}).")
    String dbSchema;

    @Option(names = "--collections", paramLabel = "DIR", description = "Directory of extra collection definition files (*.json, *.yaml).")
    Path collectionsDir;

    ServerConfig apply(ServerConfig c) {
      return c.withDataDir(dataDir)
          .withDb(Optional.ofNullable(dbUrl).filter(s -> !s.isBlank()), Optional.ofNullable(dbUser), Optional.ofNullable(dbPassword), dbSchema)
          .withCollectionsDir(Optional.ofNullable(collectionsDir));
    }
  }

  /**
   * The command line with settings from the environment and the configuration file as well as
   * flags ({@link org.civicsync.server.app.config.ConfigSources}).
   */
  static CommandLine commandLine(String[] args, java.util.Map<String, String> env) {
    org.civicsync.server.app.config.ConfigSources sources = org.civicsync.server.app.config.ConfigSources.load(args, env);
    CommandLine cli = new CommandLine(new Main());
    cli.setDefaultValueProvider(sources);
    return cli;
  }

  @Command(name = "serve", mixinStandardHelpOptions = true, description = "Run the sync server.")
  static final class Serve implements Callable<Integer> {
    @Mixin ServeOptions options = new ServeOptions();
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
      ServerConfig config = options.toConfig(spec);
      String host = config.host();
      CivicSyncServer server = CivicSyncServer.start(config);
      String url = "http://" + (host.equals("0.0.0.0") ? "localhost" : host) + ":" + server.port();
      CountDownLatch stopped = new CountDownLatch(1);
      Runtime.getRuntime().addShutdownHook(new Thread(() -> {
        server.close();
        stopped.countDown();
      }, "civicsync-shutdown"));
      System.out.println();
      System.out.println("CivicSync is running at " + url + "  (store: " + Stores.describe(config) + ")");
      System.out.println("  API description: " + url + "/openapi.yaml");
      server.generatedAdminToken().ifPresent(t -> {
        System.out.println("  Admin token (shown only this once; set CIVICSYNC_ADMIN_TOKEN to choose your own):");
        System.out.println("    " + t);
      });
      server.demoEnrollmentCode().ifPresent(code -> {
        System.out.println("  Demo tenant '" + code.tenantId() + "'. Enrollment code: " + code.code()
            + "  (valid until " + code.expiresAt() + ", " + code.maxUses() + " devices)");
        System.out.println("  Enroll a device:");
        System.out.println("    curl -s -X POST " + url + "/v1/devices/enroll -H 'Content-Type: application/json' \\");
        System.out.println("      -d '{\"enrollmentCode\":\"" + code.code() + "\",\"deviceName\":\"field tablet 1\",\"publicKey\":\"<from ./civicsync keygen>\"}'");
        System.out.println("  then push and pull with the returned token: see docs/protocol.md.");
      });
      System.out.println("Press Ctrl+C to stop.");
      stopped.await();
      return 0;
    }
  }

  @Command(name = "rebuild-projections", mixinStandardHelpOptions = true,
      description = "Rebuild the records projection of every tenant (or one) from the event log.")
  static final class RebuildProjections implements Callable<Integer> {
    @Mixin StoreOptions store = new StoreOptions();

    @Option(names = "--tenant", description = "Only this tenant.")
    String tenant;

    @Override
    public Integer call() {
      ServerConfig config = store.apply(ServerConfig.defaults());
      org.civicsync.core.collections.CollectionCatalog catalog =
          org.civicsync.server.collections.DefinitionFiles.load(config.collectionsDir());
      try (ServerStore s = Stores.open(config)) {
        ProjectionRebuilder rebuilder = new ProjectionRebuilder(s, catalog);
        for (String t : tenant == null ? s.tenantIds() : java.util.List.of(tenant)) {
          System.out.println("tenant " + t + ": " + rebuilder.rebuild(t) + " records rebuilt");
        }
      }
      return 0;
    }
  }

  @Command(name = "compact", mixinStandardHelpOptions = true,
      description = "Compact tombstones and superseded log detail older than the horizon now (the server does it daily).")
  static final class Compact implements Callable<Integer> {
    @Mixin StoreOptions store = new StoreOptions();

    @Option(names = "--tenant", description = "Only this tenant (published domain events are then left alone).")
    String tenant;

    @Option(names = "--compaction-horizon-days", defaultValue = "90", description = "Compact what is older than this many days (default: ${DEFAULT-VALUE}).")
    int horizonDays;

    @Override
    public Integer call() {
      if (horizonDays < 1) {
        System.err.println("--compaction-horizon-days must be at least 1");
        return 2;
      }
      ServerConfig config = store.apply(ServerConfig.defaults());
      try (ServerStore s = Stores.open(config)) {
        org.civicsync.server.compaction.Compactor compactor =
            new org.civicsync.server.compaction.Compactor(s, java.time.Clock.systemUTC(), java.time.Duration.ofDays(horizonDays));
        java.util.List<org.civicsync.server.compaction.Compactor.Report> reports =
            tenant == null ? compactor.compactAll() : java.util.List.of(compactor.compact(tenant));
        for (org.civicsync.server.compaction.Compactor.Report r : reports) {
          System.out.println("tenant " + r.tenantId() + ": through seq " + r.cutSeq() + ", " + r.tombstones() + " tombstone(s) buried, "
              + r.logEntries() + " log entr(ies) compacted, watermark " + r.watermark()
              + (r.refused() > 0 ? ", " + r.refused() + " entr(ies) NOT compacted: detail does not match its digest (run audit verify)" : ""));
        }
        return reports.stream().anyMatch(r -> r.refused() > 0) ? 1 : 0;
      }
    }
  }

  @Command(name = "enrollment-code", mixinStandardHelpOptions = true,
      description = "Issue an enrollment code for a user and print it, with a QR code to scan with the device.")
  static final class EnrollmentCodeCommand implements Callable<Integer> {
    @Mixin StoreOptions store = new StoreOptions();

    @Option(names = "--tenant", required = true, description = "The tenant.")
    String tenant;

    @Option(names = "--user", required = true, description = "The user the device will act for (must exist).")
    String user;

    @Option(names = "--label", description = "A label for people (e.g. the team).")
    String label;

    @Option(names = "--hours", defaultValue = "72", description = "Hours until the code expires (default: ${DEFAULT-VALUE}).")
    int hours;

    @Option(names = "--uses", defaultValue = "1", description = "How many devices may enroll with it (default: ${DEFAULT-VALUE}).")
    int uses;

    @Option(names = "--no-qr", description = "Do not draw the QR code.")
    boolean noQr;

    @Override
    public Integer call() {
      ServerConfig config = store.apply(ServerConfig.defaults());
      try (ServerStore s = Stores.open(config)) {
        org.civicsync.contracts.EnrollmentCode code = new org.civicsync.server.tenancy.TenancyService(s, java.time.Clock.systemUTC())
            .issueEnrollmentCode(tenant, new org.civicsync.contracts.EnrollmentCodeRequest(user, label, hours, uses));
        System.out.println("Enrollment code for " + user + " in tenant " + tenant + ": " + code.code());
        System.out.println("valid until " + code.expiresAt() + " for " + code.maxUses() + " device(s)");
        if (!noQr) {
          // The QR code carries the code alone: the device app knows its server.
          System.out.print(TerminalQr.render(code.code()));
        }
        return 0;
      } catch (org.civicsync.server.ApiException e) {
        System.err.println(e.code() + ": " + e.getMessage());
        return 2;
      }
    }
  }

  @Command(name = "audit", mixinStandardHelpOptions = true, description = "Tamper-evident audit log.",
      subcommands = {Main.AuditVerify.class})
  static final class Audit implements Runnable {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
      spec.commandLine().usage(System.out);
    }
  }

  @Command(name = "verify", mixinStandardHelpOptions = true,
      description = "Walk each tenant's audit chain against the event log and outcomes; report the first broken link. Exit 1 if any.")
  static final class AuditVerify implements Callable<Integer> {
    @Mixin StoreOptions store = new StoreOptions();

    @Option(names = "--tenant", description = "Only this tenant.")
    String tenant;

    @Override
    public Integer call() {
      ServerConfig config = store.apply(ServerConfig.defaults());
      int broken = 0;
      try (ServerStore s = Stores.open(config)) {
        org.civicsync.server.audit.AuditVerifier verifier = new org.civicsync.server.audit.AuditVerifier(s);
        for (String t : tenant == null ? s.tenantIds() : java.util.List.of(tenant)) {
          org.civicsync.contracts.AuditVerification v = verifier.verify(t);
          if (v.ok()) {
            System.out.println("tenant " + t + ": ok, " + v.entries() + " entries, " + v.logEntries() + " log entries, " + v.outcomes()
                + " outcomes; head " + v.headSeq() + " " + v.headHash());
          } else {
            broken++;
            System.out.println("tenant " + t + ": BROKEN at " + v.firstBroken().table() + " seq " + v.firstBroken().seq() + ": "
                + v.firstBroken().reason());
          }
        }
      }
      return broken == 0 ? 0 : 1;
    }
  }

  @Command(name = "keygen", mixinStandardHelpOptions = true,
      description = "Make an Ed25519 device key pair (for trying the API by hand; devices make their own).")
  static final class Keygen implements Callable<Integer> {
    @Override
    public Integer call() {
      org.civicsync.core.signing.Ed25519.KeyPair k = org.civicsync.core.signing.Ed25519.generate();
      System.out.println("{\"privateKeySeed\":\"" + k.privateKey().encoded() + "\",\"publicKey\":\"" + k.publicKey().encoded() + "\"}");
      return 0;
    }
  }

  @Command(name = "sign", mixinStandardHelpOptions = true,
      description = "Sign the mutations of a push body read from standard input and print the signed body; with --challenge,"
          + " print the signature of a token challenge instead (for trying the API by hand).")
  static final class Sign implements Callable<Integer> {
    @Option(names = "--challenge", description = "A challenge from POST /v1/devices/challenge: print its token signature.")
    String challenge;

    @Option(names = "--key", required = true, description = "The device's private key seed (from keygen).")
    String seed;

    @Option(names = "--tenant", required = true)
    String tenant;

    @Option(names = "--device", required = true, description = "The device id enrollment returned.")
    java.util.UUID device;

    @Override
    public Integer call() throws Exception {
      org.civicsync.core.signing.Ed25519.KeyPair k = org.civicsync.core.signing.Ed25519.fromSeed(seed);
      if (challenge != null) {
        System.out.println(k.privateKey().sign(org.civicsync.core.signing.Envelopes.tokenSigningInput(tenant, device, challenge)));
        return 0;
      }
      org.civicsync.contracts.PushRequest body = org.civicsync.core.json.Json.mapper()
          .readValue(System.in, org.civicsync.contracts.PushRequest.class);
      java.util.List<org.civicsync.contracts.Mutation> signed = body.mutations().stream()
          .map(m -> org.civicsync.core.signing.Envelopes.sign(m, tenant, device, k.privateKey())).toList();
      System.out.println(org.civicsync.core.json.Json.mapper().writeValueAsString(new org.civicsync.contracts.PushRequest(signed)));
      return 0;
    }
  }
}
