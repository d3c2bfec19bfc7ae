package org.civicsync.server.app;

import java.nio.file.Path;
import java.util.Optional;

/**
 * How to run a server.
 *
 * @param host address to bind
 * @param port 0 picks a free port
 * @param dataDir where the embedded SQLite database lives (when no {@code dbUrl} is given)
 * @param dbUrl a {@code jdbc:postgresql://} URL to use PostgreSQL instead of SQLite
 * @param dbSchema the PostgreSQL schema to use
 * @param collectionsDir extra collection definition files
 * @param adminToken from {@code CIVICSYNC_ADMIN_TOKEN}; otherwise generated at first start
 * @param maxBodyBytes largest accepted request body after decompression
 * @param demo create tenant {@code demo} and print an enrollment code at start
 * @param maxClockSkew how far a mutation's clock may run ahead of the server's
 * @param webDir a directory to serve the web app from instead of the one built into the server
 *     (for developing the web app)
 * @param streamHeartbeat how often an open {@code /v1/sync/stream} gets a heartbeat when nothing changes
 * @param nats where to publish domain events (NATS JetStream); empty: no events are written or published
 * @param compactionHorizon how old tombstones and superseded log detail get before the daily
 *     compaction removes them (devices whose cursor is older download again)
 * @param holdWindow how long a mutation held behind a gap in its device's deviceSeq waits before
 *     it is forced through
 */
public record ServerConfig(
    String host,
    int port,
    Path dataDir,
    Optional<String> dbUrl,
    Optional<String> dbUser,
    Optional<String> dbPassword,
    String dbSchema,
    Optional<Path> collectionsDir,
    Optional<String> adminToken,
    long maxBodyBytes,
    boolean demo,
    java.time.Duration maxClockSkew,
    java.time.Duration holdWindow,
    Security security,
    Optional<Path> webDir,
    java.time.Duration streamHeartbeat,
    Optional<org.civicsync.server.nats.NatsSettings> nats,
    java.time.Duration compactionHorizon) {

  /**
   * Hardening settings.
   *
   * @param tokenTtl how long a device token works after enrollment or renewal
   * @param requestsPerMinute sustained requests per minute per token (or per address without one)
   * @param corsOrigins browser origins allowed to call the API (none: no cross-origin access)
   */
  public record Security(java.time.Duration tokenTtl, int requestsPerMinute, java.util.List<String> corsOrigins) {
    public Security {
      corsOrigins = java.util.List.copyOf(corsOrigins);
    }

    public static Security defaults() {
      return new Security(org.civicsync.server.tenancy.TenancyService.DEFAULT_TOKEN_TTL, 1200, java.util.List.of());
    }
  }

  public static final java.time.Duration DEFAULT_STREAM_HEARTBEAT = java.time.Duration.ofSeconds(15);

  /** How old tombstones and superseded log detail get before compaction removes them. */
  public static final java.time.Duration DEFAULT_COMPACTION_HORIZON = java.time.Duration.ofDays(90);

  public static final long DEFAULT_MAX_BODY_BYTES = 10L * 1024 * 1024;

  /** Defaults: SQLite in {@code ./civicsync-data}, port 8080, every interface. */
  public static ServerConfig defaults() {
    return new ServerConfig("0.0.0.0", 8080, Path.of("civicsync-data"), Optional.empty(), Optional.empty(),
        Optional.empty(), "civicsync", Optional.empty(), Optional.empty(), DEFAULT_MAX_BODY_BYTES, false,
        org.civicsync.core.records.MutationRules.DEFAULT_MAX_CLOCK_SKEW, org.civicsync.server.push.PushService.DEFAULT_HOLD_WINDOW, Security.defaults(), Optional.empty(), DEFAULT_STREAM_HEARTBEAT, Optional.empty(), DEFAULT_COMPACTION_HORIZON);
  }

  public ServerConfig withPort(int p) {
    return new ServerConfig(host, p, dataDir, dbUrl, dbUser, dbPassword, dbSchema, collectionsDir, adminToken, maxBodyBytes, demo, maxClockSkew, holdWindow, security, webDir, streamHeartbeat, nats, compactionHorizon);
  }

  public ServerConfig withHost(String h) {
    return new ServerConfig(h, port, dataDir, dbUrl, dbUser, dbPassword, dbSchema, collectionsDir, adminToken, maxBodyBytes, demo, maxClockSkew, holdWindow, security, webDir, streamHeartbeat, nats, compactionHorizon);
  }

  public ServerConfig withDataDir(Path d) {
    return new ServerConfig(host, port, d, dbUrl, dbUser, dbPassword, dbSchema, collectionsDir, adminToken, maxBodyBytes, demo, maxClockSkew, holdWindow, security, webDir, streamHeartbeat, nats, compactionHorizon);
  }

  public ServerConfig withDb(Optional<String> url, Optional<String> user, Optional<String> password, String schema) {
    return new ServerConfig(host, port, dataDir, url, user, password, schema, collectionsDir, adminToken, maxBodyBytes, demo, maxClockSkew, holdWindow, security, webDir, streamHeartbeat, nats, compactionHorizon);
  }

  public ServerConfig withCollectionsDir(Optional<Path> d) {
    return new ServerConfig(host, port, dataDir, dbUrl, dbUser, dbPassword, dbSchema, d, adminToken, maxBodyBytes, demo, maxClockSkew, holdWindow, security, webDir, streamHeartbeat, nats, compactionHorizon);
  }

  public ServerConfig withAdminToken(Optional<String> t) {
    return new ServerConfig(host, port, dataDir, dbUrl, dbUser, dbPassword, dbSchema, collectionsDir, t, maxBodyBytes, demo, maxClockSkew, holdWindow, security, webDir, streamHeartbeat, nats, compactionHorizon);
  }

  public ServerConfig withMaxBodyBytes(long b) {
    return new ServerConfig(host, port, dataDir, dbUrl, dbUser, dbPassword, dbSchema, collectionsDir, adminToken, b, demo, maxClockSkew, holdWindow, security, webDir, streamHeartbeat, nats, compactionHorizon);
  }

  public ServerConfig withMaxClockSkew(java.time.Duration skew) {
    return new ServerConfig(host, port, dataDir, dbUrl, dbUser, dbPassword, dbSchema, collectionsDir, adminToken, maxBodyBytes, demo, skew, holdWindow, security, webDir, streamHeartbeat, nats, compactionHorizon);
  }

  public ServerConfig withHoldWindow(java.time.Duration w) {
    return new ServerConfig(host, port, dataDir, dbUrl, dbUser, dbPassword, dbSchema, collectionsDir, adminToken, maxBodyBytes, demo,
        maxClockSkew, w, security, webDir, streamHeartbeat, nats, compactionHorizon);
  }

  public ServerConfig withDemo(boolean d) {
    return new ServerConfig(host, port, dataDir, dbUrl, dbUser, dbPassword, dbSchema, collectionsDir, adminToken, maxBodyBytes, d, maxClockSkew, holdWindow, security, webDir, streamHeartbeat, nats, compactionHorizon);
  }

  public ServerConfig withSecurity(Security sec) {
    return new ServerConfig(host, port, dataDir, dbUrl, dbUser, dbPassword, dbSchema, collectionsDir, adminToken, maxBodyBytes, demo,
        maxClockSkew, holdWindow, sec, webDir, streamHeartbeat, nats, compactionHorizon);
  }

  public ServerConfig withWebDir(Optional<Path> d) {
    return new ServerConfig(host, port, dataDir, dbUrl, dbUser, dbPassword, dbSchema, collectionsDir, adminToken, maxBodyBytes, demo,
        maxClockSkew, holdWindow, security, d, streamHeartbeat, nats, compactionHorizon);
  }

  public ServerConfig withStreamHeartbeat(java.time.Duration h) {
    return new ServerConfig(host, port, dataDir, dbUrl, dbUser, dbPassword, dbSchema, collectionsDir, adminToken, maxBodyBytes, demo,
        maxClockSkew, holdWindow, security, webDir, h, nats, compactionHorizon);
  }

  public ServerConfig withNats(Optional<org.civicsync.server.nats.NatsSettings> n) {
    return new ServerConfig(host, port, dataDir, dbUrl, dbUser, dbPassword, dbSchema, collectionsDir, adminToken, maxBodyBytes, demo,
        maxClockSkew, holdWindow, security, webDir, streamHeartbeat, n, compactionHorizon);
  }

  public ServerConfig withCompactionHorizon(java.time.Duration h) {
    return new ServerConfig(host, port, dataDir, dbUrl, dbUser, dbPassword, dbSchema, collectionsDir, adminToken, maxBodyBytes, demo,
        maxClockSkew, holdWindow, security, webDir, streamHeartbeat, nats, h);
  }
}
