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
    subcommands = {Main.Serve.class, Main.RebuildProjections.class})
public final class Main implements Runnable {

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  public static void main(String[] args) {
    System.exit(new CommandLine(new Main()).execute(args));
  }

  @Override
  public void run() {
    spec.commandLine().usage(System.out);
  }

  /** Where the data lives; shared by every subcommand that opens the store. */
  static final class StoreOptions {
    @Option(names = "--data", paramLabel = "DIR", defaultValue = "${env:CIVICSYNC_DATA:-civicsync-data}",
        description = "Directory of the embedded SQLite database (default: ${DEFAULT-VALUE}).")
    Path dataDir;

    @Option(names = "--db-url", paramLabel = "JDBC_URL", defaultValue = "${env:CIVICSYNC_DB_URL}",
        description = "Use PostgreSQL instead of SQLite, e.g. jdbc:postgresql://127.0.0.1:5432/civicsync (env CIVICSYNC_DB_URL).")
    String dbUrl;

    @Option(names = "--db-user", defaultValue = "${env:CIVICSYNC_DB_USER}", description = "PostgreSQL user (env CIVICSYNC_DB_USER).")
    String dbUser;

    @Option(names = "--db-password", defaultValue = "${env:CIVICSYNC_DB_PASSWORD}", description = "PostgreSQL password (env CIVICSYNC_DB_PASSWORD).")
    String dbPassword;

    @Option(names = "--db-schema", defaultValue = "${env:CIVICSYNC_DB_SCHEMA:-civicsync}", description = "PostgreSQL schema (default: ${DEFAULT-VALUE}).")
    String dbSchema;

    @Option(names = "--collections", paramLabel = "DIR", description = "Directory of extra collection definition files (*.json, *.yaml).")
    Path collectionsDir;

    ServerConfig apply(ServerConfig c) {
      return c.withDataDir(dataDir)
          .withDb(Optional.ofNullable(dbUrl).filter(s -> !s.isBlank()), Optional.ofNullable(dbUser), Optional.ofNullable(dbPassword), dbSchema)
          .withCollectionsDir(Optional.ofNullable(collectionsDir));
    }
  }

  @Command(name = "serve", mixinStandardHelpOptions = true, description = "Run the sync server.")
  static final class Serve implements Callable<Integer> {
    @Mixin StoreOptions store = new StoreOptions();

    @Option(names = "--port", defaultValue = "${env:CIVICSYNC_PORT:-8080}", description = "HTTP port (default: ${DEFAULT-VALUE}).")
    int port;

    @Option(names = "--host", defaultValue = "${env:CIVICSYNC_HOST:-0.0.0.0}", description = "Address to bind (default: ${DEFAULT-VALUE}).")
    String host;

    @Option(names = "--demo", description = "Create tenant 'demo' and print an enrollment code for it.")
    boolean demo;

    @Option(names = "--max-clock-skew-hours", defaultValue = "24",
        description = "How far a mutation's clock (hlc) may run ahead of the server's before it is rejected (default: ${DEFAULT-VALUE}).")
    long maxClockSkewHours;

    @Option(names = "--hold-window-hours", defaultValue = "120",
        description = "How long a mutation that arrived before an earlier one of its device waits before it is forced through (default: ${DEFAULT-VALUE}).")
    long holdWindowHours;

    @Option(names = "--max-body-bytes", defaultValue = "10485760", description = "Largest request body after decompression (default: ${DEFAULT-VALUE}).")
    long maxBodyBytes;

    @Override
    public Integer call() throws Exception {
      ServerConfig config = store.apply(ServerConfig.defaults()).withPort(port).withHost(host).withDemo(demo)
          .withMaxBodyBytes(maxBodyBytes).withMaxClockSkew(java.time.Duration.ofHours(maxClockSkewHours))
          .withHoldWindow(java.time.Duration.ofHours(holdWindowHours)).withAdminToken(Optional.ofNullable(System.getenv("CIVICSYNC_ADMIN_TOKEN")));
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
        System.out.println("      -d '{\"enrollmentCode\":\"" + code.code() + "\",\"deviceName\":\"field tablet 1\"}'");
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
}
