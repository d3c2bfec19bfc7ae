package org.civicsync.server.app;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import io.javalin.Javalin;
import io.javalin.compression.CompressionStrategy;
import io.javalin.config.JavalinConfig;
import io.javalin.http.Context;
import io.javalin.http.Handler;
import io.javalin.http.HttpResponseException;
import io.javalin.json.JavalinJackson;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.function.Consumer;
import org.civicsync.contracts.CollectionsResponse;
import org.civicsync.contracts.CreateTenantRequest;
import org.civicsync.contracts.EnrollRequest;
import org.civicsync.contracts.EnrollmentCodeRequest;
import org.civicsync.contracts.ErrorCode;
import org.civicsync.contracts.ErrorDetail;
import org.civicsync.contracts.ErrorResponse;
import org.civicsync.contracts.Schemas;
import org.civicsync.contracts.ApiClientRequest;
import org.civicsync.contracts.ResolveRequest;
import org.civicsync.contracts.ServerRecord;
import org.civicsync.contracts.SyncStatus;
import org.civicsync.core.collections.CollectionCatalog;
import org.civicsync.core.json.Json;
import org.civicsync.core.validation.SchemaChecker;
import org.civicsync.core.validation.Violation;
import org.civicsync.server.ApiException;
import org.civicsync.server.inbox.InboxService;
import org.civicsync.server.pull.PullService;
import org.civicsync.server.records.RecordsService;
import org.civicsync.server.push.PushService;
import org.civicsync.server.store.ServerStore;
import org.civicsync.server.store.StoreUnavailableException;
import org.civicsync.server.tenancy.Caller;
import org.civicsync.server.tenancy.TenancyService;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The HTTP API of protocol v1 on Javalin. {@link #ROUTES} is the one list of routes: they are
 * registered from it, and a test holds it against the OpenAPI document.
 */
final class HttpApi {
  private static final Logger LOG = LoggerFactory.getLogger(HttpApi.class);
  /** One line per request (route template, status, time), for operators. */
  private static final Logger ACCESS = LoggerFactory.getLogger("civicsync.access");
  private static final String HANDLED = "civicsync.errorWritten";
  private static final String STARTED = "civicsync.started";
  private static final String ROUTE = "civicsync.route";

  /** A route: method and Javalin path ({@code {param}} style, as in OpenAPI). */
  record Route(String method, String path) {}

  static final List<Route> ROUTES = List.of(
      new Route("GET", "/health/live"),
      new Route("GET", "/health/ready"),
      new Route("GET", "/metrics"),
      new Route("GET", "/openapi.yaml"),
      new Route("GET", "/schemas/{file}"),
      new Route("POST", "/v1/admin/tenants"),
      new Route("POST", "/v1/admin/tenants/{tenantId}/enrollment-codes"),
      new Route("POST", "/v1/devices/enroll"),
      new Route("GET", "/v1/collections"),
      new Route("POST", "/v1/sync/push"),
      new Route("HEAD", "/v1/sync/uploads/{key}"),
      new Route("GET", "/v1/sync/pull"),
      new Route("GET", "/v1/sync/stream"),
      new Route("GET", "/v1/sync/status"),
      new Route("GET", "/v1/sync/outcomes"),
      new Route("GET", "/v1/inbox"),
      new Route("POST", "/v1/inbox/{id}/resolve"),
      new Route("POST", "/v1/admin/tenants/{tenantId}/api-clients"),
      new Route("GET", "/v1/records/{collection}"),
      new Route("GET", "/v1/records/{collection}/{recordId}"),
      new Route("PUT", "/v1/records/{collection}/{recordId}"),
      new Route("PATCH", "/v1/records/{collection}/{recordId}"),
      new Route("DELETE", "/v1/records/{collection}/{recordId}"),
      new Route("POST", "/v1/admin/tenants/{tenantId}/users"),
      new Route("GET", "/v1/admin/tenants/{tenantId}/users"),
      new Route("PUT", "/v1/admin/tenants/{tenantId}/users/{userId}"),
      new Route("GET", "/v1/admin/tenants/{tenantId}/org-units"),
      new Route("PUT", "/v1/admin/tenants/{tenantId}/org-units/{orgUnitId}"),
      new Route("GET", "/v1/admin/tenants/{tenantId}/devices"),
      new Route("POST", "/v1/admin/devices/{deviceId}/revoke"),
      new Route("POST", "/v1/devices/challenge"),
      new Route("POST", "/v1/devices/token"),
      new Route("GET", "/v1/admin/audit/verify"),
      new Route("GET", "/v1/admin/stats"),
      new Route("GET", "/v1/audit/records/{collection}/{recordId}"));

  private static final SchemaChecker CREATE_TENANT = SchemaChecker.contract(Schemas.CREATE_TENANT_REQUEST);
  private static final SchemaChecker CODE_REQUEST = SchemaChecker.contract(Schemas.ENROLLMENT_CODE_REQUEST);
  private static final SchemaChecker ENROLL = SchemaChecker.contract(Schemas.ENROLL_REQUEST);
  private static final SchemaChecker RESOLVE = SchemaChecker.contract(Schemas.RESOLVE_REQUEST);
  private static final SchemaChecker API_CLIENT = SchemaChecker.contract(Schemas.API_CLIENT_REQUEST);
  private static final SchemaChecker USER = SchemaChecker.contract(Schemas.USER_REQUEST);
  private static final SchemaChecker ORG_UNIT = SchemaChecker.contract(Schemas.ORG_UNIT_REQUEST);
  private static final SchemaChecker CHALLENGE = SchemaChecker.contract(Schemas.CHALLENGE_REQUEST);
  private static final SchemaChecker TOKEN = SchemaChecker.contract(Schemas.TOKEN_REQUEST);

  private final ServerStore store;
  private final CollectionCatalog catalog;
  /** The body of {@code GET /v1/collections}, and its entity tag (a digest of it). */
  private final String collectionsJson;
  private final String collectionsTag;
  private final TenancyService tenancy;
  private final PushService push;
  private final PullService pull;
  private final InboxService inbox;
  private final RecordsService records;
  private final Bodies bodies;
  private final ResumableUploads uploads;
  private final java.time.Clock clock;
  private final AdminIdempotency adminKeys;
  private final org.civicsync.server.audit.AuditVerifier audits;
  private final org.civicsync.server.audit.RecordTrails trails;
  private final RateLimiter limiter;
  private final java.util.Set<String> corsOrigins;
  private final org.civicsync.server.app.web.WebApp web;
  private final org.civicsync.server.app.metrics.ServerMetrics metrics;
  private final org.civicsync.server.app.metrics.TrafficMeter traffic;
  private final org.civicsync.server.app.live.EventStreams streams;
  private final org.civicsync.server.stats.StatsService stats;

  HttpApi(ServerStore store, CollectionCatalog catalog, TenancyService tenancy, PushService push, PullService pull,
      InboxService inbox, RecordsService records, long maxBodyBytes, java.time.Clock clock, ServerConfig.Security security,
      org.civicsync.server.app.web.WebApp web, org.civicsync.server.app.live.EventStreams streams,
      org.civicsync.server.app.metrics.ServerMetrics metrics, org.civicsync.server.app.metrics.TrafficMeter traffic) {
    this.metrics = metrics;
    this.traffic = traffic;
    this.web = web;
    this.streams = streams;
    this.stats = new org.civicsync.server.stats.StatsService(store, clock);
    this.adminKeys = new AdminIdempotency(store);
    this.limiter = new RateLimiter(security.requestsPerMinute(), System::nanoTime);
    this.corsOrigins = java.util.Set.copyOf(security.corsOrigins());
    this.records = records;
    this.audits = new org.civicsync.server.audit.AuditVerifier(store);
    this.trails = new org.civicsync.server.audit.RecordTrails(store, catalog);
    this.store = store;
    this.catalog = catalog;
    try {
      this.collectionsJson = Json.mapper().writeValueAsString(new CollectionsResponse(catalog.definitions()));
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalStateException("the collection definitions cannot be written as JSON", e);
    }
    this.collectionsTag = "\"" + org.civicsync.core.canonical.Digests.sha256Hex(
        collectionsJson.getBytes(java.nio.charset.StandardCharsets.UTF_8)).substring(0, 32) + "\"";
    this.tenancy = tenancy;
    this.push = push;
    this.pull = pull;
    this.inbox = inbox;
    this.bodies = new Bodies(maxBodyBytes);
    this.uploads = new ResumableUploads(maxBodyBytes, clock);
    this.clock = clock;
  }

  /** Configures Javalin: JSON mapper, gzip responses, routes, error mapping. */
  Consumer<JavalinConfig> configure(String host, int port) {
    return cfg -> {
      cfg.startup.showJavalinBanner = false;
      cfg.startup.showOldJavalinVersionWarning = false;
      cfg.jetty.host = host;
      cfg.jetty.port = port;
      cfg.concurrency.useVirtualThreads = true;
      cfg.jsonMapper(new JavalinJackson(Json.mapper(), true));
      cfg.http.compressionStrategy = CompressionStrategy.GZIP;
      cfg.http.prefer405over404 = true;
      // Bodies are read as streams and capped by Bodies after decompression.
      cfg.http.maxRequestSize = Long.MAX_VALUE;
      // Requests are counted around the whole servlet, so one counts as finished only once its
      // response has been written: a graceful stop waits for that, not for the handler alone.
      cfg.jetty.modifyServletContextHandler(h -> h.addFilter(new org.eclipse.jetty.ee10.servlet.FilterHolder(new InFlight()), "/*",
          java.util.EnumSet.of(jakarta.servlet.DispatcherType.REQUEST)));
      cfg.routes.before(ctx -> {
        ctx.attribute(STARTED, System.nanoTime());
        String rid = org.civicsync.server.app.logging.RequestIds.of(Optional.ofNullable(ctx.header(org.civicsync.server.app.logging.RequestIds.HEADER)));
        org.slf4j.MDC.put(org.civicsync.server.app.logging.RequestIds.MDC_KEY, rid);
        ctx.header(org.civicsync.server.app.logging.RequestIds.HEADER, rid);
      });
      cfg.routes.before(this::guard);
      cfg.routes.after(this::measure);
      for (Route r : ROUTES) {
        Handler inner = handler(r);
        Handler h = ctx -> {
          ctx.attribute(ROUTE, r.path());
          inner.handle(ctx);
        };
        switch (r.method()) {
          case "GET" -> cfg.routes.get(r.path(), h);
          case "POST" -> cfg.routes.post(r.path(), h);
          case "PUT" -> cfg.routes.put(r.path(), h);
          case "PATCH" -> cfg.routes.patch(r.path(), h);
          case "DELETE" -> cfg.routes.delete(r.path(), h);
          case "HEAD" -> cfg.routes.head(r.path(), h);
          default -> throw new IllegalStateException(r.method());
        }
      }
      cfg.routes.exception(ApiException.class, (e, ctx) -> {
        ctx.attribute(HANDLED, true);
        ctx.status(e.status()).json(new ErrorResponse(e.detail(), e.record()));
      });
      cfg.routes.exception(StoreUnavailableException.class, (e, ctx) -> {
        LOG.warn("store unavailable: {}", e.getMessage());
        error(ctx, ErrorCode.UNAVAILABLE, ErrorDetail.of(ErrorCode.UNAVAILABLE, "the store is not reachable; nothing was changed, retry later"));
      });
      cfg.routes.exception(HttpResponseException.class, (e, ctx) -> {
        if (e.getStatus() != 404 || !serveWebApp(ctx)) {
          statusError(ctx, e.getStatus());
        }
      });
      cfg.routes.exception(Exception.class, (e, ctx) -> {
        LOG.error("unexpected fault on {} {}", ctx.method(), ctx.path(), e);
        error(ctx, ErrorCode.INTERNAL, ErrorDetail.of(ErrorCode.INTERNAL, "unexpected server fault; nothing was changed, retry"));
      });
      cfg.routes.error(404, ctx -> {
        if (!serveWebApp(ctx)) {
          statusError(ctx, 404);
        }
      });
      cfg.routes.error(405, ctx -> statusError(ctx, 405));
    };
  }

  private Handler handler(Route r) {
    return switch (r.method() + " " + r.path()) {
      case "GET /health/live" -> ctx -> ctx.json(Map.of("status", "up"));
      case "GET /health/ready" -> ctx -> {
        if (draining) {
          throw new ApiException(ErrorCode.UNAVAILABLE, "the server is shutting down");
        }
        store.ping();
        ctx.json(Map.of("status", "ready"));
      };
      case "GET /openapi.yaml" -> ctx -> ctx.contentType("application/yaml").result(Schemas.openApiYaml());
      case "GET /schemas/{file}" -> ctx -> {
        String file = ctx.pathParam("file");
        if (!Schemas.ALL.contains(file)) {
          throw new ApiException(ErrorCode.NOT_FOUND, "no contract schema '" + file + "'", "file");
        }
        ctx.contentType("application/json").result(Schemas.text(file));
      };
      case "POST /v1/admin/tenants" -> ctx -> adminWrite(ctx, false, body -> new AdminIdempotency.Answer(201,
          tenancy.createTenant(parse(body, CREATE_TENANT, CreateTenantRequest.class))));
      case "POST /v1/admin/tenants/{tenantId}/enrollment-codes" -> ctx -> adminWrite(ctx, true, body -> new AdminIdempotency.Answer(201,
          tenancy.issueEnrollmentCode(ctx.pathParam("tenantId"), parse(body, CODE_REQUEST, EnrollmentCodeRequest.class))));
      case "POST /v1/admin/tenants/{tenantId}/users" -> ctx -> adminWrite(ctx, false, body -> {
        org.civicsync.contracts.UserRequest req = parse(body, USER, org.civicsync.contracts.UserRequest.class);
        if (req.userId() == null) {
          throw new ApiException(ErrorCode.INVALID_REQUEST, "userId is required here (PUT …/users/{userId} takes it from the path)", "/userId");
        }
        return new AdminIdempotency.Answer(201, tenancy.putUser(ctx.pathParam("tenantId"), req.userId(), req, false));
      });
      case "PUT /v1/admin/tenants/{tenantId}/users/{userId}" -> ctx -> adminWrite(ctx, false, body -> {
        org.civicsync.contracts.UserRequest req = parse(body, USER, org.civicsync.contracts.UserRequest.class);
        if (req.userId() != null && !req.userId().equals(ctx.pathParam("userId"))) {
          throw new ApiException(ErrorCode.INVALID_REQUEST, "the body's userId differs from the path's", "/userId");
        }
        return new AdminIdempotency.Answer(200, tenancy.putUser(ctx.pathParam("tenantId"), ctx.pathParam("userId"), req, true));
      });
      case "GET /v1/admin/tenants/{tenantId}/users" -> ctx -> {
        admin(ctx);
        ctx.json(new org.civicsync.contracts.UsersResponse(tenancy.users(ctx.pathParam("tenantId"))));
      };
      case "PUT /v1/admin/tenants/{tenantId}/org-units/{orgUnitId}" -> ctx -> adminWrite(ctx, false, body -> new AdminIdempotency.Answer(200,
          tenancy.putOrgUnit(ctx.pathParam("tenantId"), ctx.pathParam("orgUnitId"),
              parse(body, ORG_UNIT, org.civicsync.contracts.OrgUnitRequest.class))));
      case "GET /v1/admin/tenants/{tenantId}/org-units" -> ctx -> {
        admin(ctx);
        ctx.json(new org.civicsync.contracts.OrgUnitsResponse(tenancy.orgUnits(ctx.pathParam("tenantId"))));
      };
      case "GET /v1/admin/tenants/{tenantId}/devices" -> ctx -> {
        admin(ctx);
        ctx.json(new org.civicsync.contracts.DevicesResponse(tenancy.devices(ctx.pathParam("tenantId"))));
      };
      case "POST /v1/admin/devices/{deviceId}/revoke" -> ctx -> adminWrite(ctx, true, body -> {
        UUID id;
        try {
          id = UUID.fromString(ctx.pathParam("deviceId"));
        } catch (IllegalArgumentException e) {
          throw new ApiException(ErrorCode.DEVICE_NOT_FOUND, "no device " + ctx.pathParam("deviceId"), "deviceId", 404, null);
        }
        return new AdminIdempotency.Answer(200, tenancy.revoke(id));
      });
      case "POST /v1/devices/challenge" -> ctx -> ctx.json(tenancy.challenge(parse(bodies.json(ctx, false), CHALLENGE,
          org.civicsync.contracts.ChallengeRequest.class)));
      case "POST /v1/devices/token" -> ctx -> ctx.json(tenancy.renewToken(parse(bodies.json(ctx, false), TOKEN,
          org.civicsync.contracts.TokenRequest.class)));
      case "GET /v1/admin/audit/verify" -> ctx -> ctx.json(audits.verify(auditTenant(ctx)));
      case "GET /v1/sync/stream" -> this::stream;
      case "GET /v1/admin/stats" -> ctx -> {
        String tenant = readerTenant(ctx, "the statistics", org.civicsync.core.access.Role.SUPERVISOR,
            org.civicsync.core.access.Role.ADMIN);
        java.time.Instant since = Optional.ofNullable(ctx.queryParam("since")).filter(v -> !v.isBlank()).map(v -> {
          try {
            return java.time.OffsetDateTime.parse(v).toInstant();
          } catch (java.time.format.DateTimeParseException e) {
            throw new ApiException(ErrorCode.INVALID_REQUEST, "since must be an RFC 3339 date-time, e.g. 2026-11-22T00:00:00Z", "since");
          }
        }).orElse(clock.instant().minus(java.time.Duration.ofDays(7)));
        ctx.json(stats.stats(tenant, since));
      };
      case "GET /v1/audit/records/{collection}/{recordId}" -> ctx -> ctx.json(trails.trail(auditTenant(ctx), ctx.pathParam("collection"),
          recordId(ctx)));
      case "POST /v1/devices/enroll" -> ctx -> {
        EnrollRequest req = parse(bodies.json(ctx, false), ENROLL, EnrollRequest.class);
        ctx.status(201).json(tenancy.enroll(req));
      };
      case "GET /v1/collections" -> ctx -> {
        tenancy.authenticate(bearer(ctx));
        // Definitions are fixed for the life of the process: a device that has them is answered
        // 304 without a body (on 2G the definitions are seconds of downlink, at every sync).
        ctx.header("ETag", collectionsTag);
        ctx.header("Accept-Encoding", Bodies.ACCEPTED_CODINGS);
        if (matchesTag(ctx.header("If-None-Match"), collectionsTag)) {
          ctx.status(304);
        } else {
          ctx.result(collectionsJson).contentType(io.javalin.http.ContentType.APPLICATION_JSON);
        }
      };
      case "POST /v1/sync/push" -> ctx -> {
        Caller.Device d = device(ctx);
        Optional<byte[]> resumed = ResumableUploads.named(ctx) ? Optional.of(uploads.receive(ctx, d.tenantId(), d.deviceId()))
            : Optional.empty();
        long received = System.nanoTime();
        org.civicsync.contracts.PushResponse answer = push.push(d, PushService.parse(bodies.json(ctx, false, resumed)));
        if (resumed.isPresent()) {
          // With Upload-Rate, what a device needs to tell where a broken body stopped without
          // asking: how much of an answer's wait was the server's own work (W3C Server Timing).
          ctx.header("Server-Timing", String.format(java.util.Locale.ROOT, "app;dur=%.1f", (System.nanoTime() - received) / 1e6));
        }
        // The codings a push body may come in (RFC 7694): a device learns from its first push.
        ctx.header("Accept-Encoding", Bodies.ACCEPTED_CODINGS);
        metrics.pushed(answer.results());
        if (prefersMinimal(ctx)) {
          // Results by position only: over 2G the ids were most of the answer (RFC 7240 Prefer).
          ctx.header("Preference-Applied", org.civicsync.contracts.PushResponse.RETURN_MINIMAL).json(answer.minimal());
        } else {
          ctx.json(answer);
        }
      };
      case "HEAD /v1/sync/uploads/{key}" -> ctx -> {
        Caller.Device d = device(ctx);
        ctx.header(ResumableUploads.OFFSET, Long.toString(uploads.offset(d.tenantId(), d.deviceId(), ctx.pathParam("key"))));
        ctx.header("Cache-Control", "no-store");
      };
      case "GET /v1/sync/pull" -> ctx -> {
        Caller.Device d = device(ctx);
        org.civicsync.server.pull.FeedPage page = pull.page(d, Optional.ofNullable(ctx.queryParam("cursor")),
            Optional.ofNullable(ctx.queryParam("limit")), Optional.ofNullable(ctx.queryParam("collections")));
        metrics.pulled(page.changes().size());
        // Written straight to the (compressing) response stream: a page of 1,000 records is about
        // half a megabyte of JSON, which ctx.json would first build as one String.
        ctx.contentType(io.javalin.http.ContentType.APPLICATION_JSON);
        page.writeTo(ctx.outputStream());
      };
      case "GET /metrics" -> ctx -> ctx.contentType("text/plain; version=0.0.4; charset=utf-8").result(metrics.scrape());
      case "GET /v1/sync/status" -> ctx -> {
        Caller.Device d = device(ctx);
        ctx.json(new SyncStatus(d.deviceId(), d.tenantId(), d.row().lastPushAt(), d.row().lastPullAt(), clock.instant()));
      };
      case "GET /v1/sync/outcomes" -> ctx -> {
        Caller.Device d = device(ctx);
        // `since` is accepted as another name for the cursor, as issue 3 first wrote it.
        Optional<String> cursor = Optional.ofNullable(ctx.queryParam("cursor")).or(() -> Optional.ofNullable(ctx.queryParam("since")));
        ctx.json(pull.outcomes(d, cursor, Optional.ofNullable(ctx.queryParam("limit"))));
      };
      case "GET /v1/inbox" -> ctx -> {
        Caller.Device d = device(ctx);
        ctx.json(inbox.list(d, Optional.ofNullable(ctx.queryParam("status")), Optional.ofNullable(ctx.queryParam("kind")),
            Optional.ofNullable(ctx.queryParam("collection")), Optional.ofNullable(ctx.queryParam("limit"))));
      };
      case "POST /v1/inbox/{id}/resolve" -> ctx -> {
        Caller.Device d = device(ctx);
        UUID id;
        try {
          id = UUID.fromString(ctx.pathParam("id"));
        } catch (IllegalArgumentException e) {
          throw new ApiException(ErrorCode.INBOX_ITEM_NOT_FOUND, "no inbox item " + ctx.pathParam("id"), "id");
        }
        ResolveRequest req = parse(bodies.json(ctx, false), RESOLVE, ResolveRequest.class);
        ctx.json(inbox.resolve(d, id, req, Optional.ofNullable(ctx.header("Idempotency-Key")).filter(k -> !k.isBlank())));
      };
      case "POST /v1/admin/tenants/{tenantId}/api-clients" -> ctx -> adminWrite(ctx, false, body -> new AdminIdempotency.Answer(201,
          tenancy.issueApiClient(ctx.pathParam("tenantId"), parse(body, API_CLIENT, ApiClientRequest.class))));
      case "GET /v1/records/{collection}" -> ctx -> {
        Caller.ApiClient c = apiClient(ctx);
        Map<String, String> equals = new java.util.LinkedHashMap<>();
        ctx.queryParamMap().forEach((k, v) -> {
          if (!k.equals("limit") && !k.equals("after")) {
            if (v.size() != 1) {
              throw new ApiException(ErrorCode.INVALID_REQUEST, "give each field filter once", k);
            }
            equals.put(k, v.get(0));
          }
        });
        ctx.json(records.list(c, ctx.pathParam("collection"), equals, Optional.ofNullable(ctx.queryParam("after")),
            Optional.ofNullable(ctx.queryParam("limit"))));
      };
      case "GET /v1/records/{collection}/{recordId}" -> ctx -> {
        Caller.ApiClient c = apiClient(ctx);
        ServerRecord rec = records.get(c, ctx.pathParam("collection"), recordId(ctx));
        ctx.header("ETag", etag(rec.version())).json(rec);
      };
      case "PUT /v1/records/{collection}/{recordId}" -> ctx -> recordWrite(ctx, RecordsService.Write.PUT);
      case "PATCH /v1/records/{collection}/{recordId}" -> ctx -> recordWrite(ctx, RecordsService.Write.PATCH);
      case "DELETE /v1/records/{collection}/{recordId}" -> ctx -> recordWrite(ctx, RecordsService.Write.DELETE);
      default -> throw new IllegalStateException("no handler for " + r);
    };
  }

  /**
   * A device's live stream (Server-Sent Events): a {@code changes} event whenever a commit
   * concerns the device, a comment line as heartbeat otherwise. Browsers' EventSource cannot send
   * headers, so the token may come as {@code ?access_token=}. The response is written straight
   * to the socket (never compressed or buffered) by {@link org.civicsync.server.app.live.EventStreams}
   * on an asynchronous request: no thread waits for an open stream, and the request ends (and
   * counts as finished) when the stream does.
   */
  private void stream(Context ctx) {
    Optional<String> token = ctx.header("Authorization") != null ? bearer(ctx)
        : Optional.ofNullable(ctx.queryParam("access_token")).filter(t -> !t.isBlank());
    if (!(tenancy.authenticate(token) instanceof Caller.Device d)) {
      throw new ApiException(ErrorCode.FORBIDDEN, "the stream needs a device token; enroll a device first");
    }
    ctx.req().setAttribute(DEVICE, d);
    long lastSeen = lastEventId(ctx);
    ctx.status(200);
    ctx.res().setContentType("text/event-stream;charset=utf-8");
    ctx.res().setHeader("X-Accel-Buffering", "no");
    ctx.future(() -> {
      // Javalin has started the asynchronous request; a stream has no time limit.
      jakarta.servlet.AsyncContext async = ctx.req().getAsyncContext();
      async.setTimeout(0);
      finishWhenComplete(ctx.req(), async);
      try {
        return streams.serve(d, lastSeen, () -> store.head(d.tenantId()), ctx.res().getOutputStream());
      } catch (java.io.IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    });
  }

  /** The {@code Last-Event-ID} a reconnecting EventSource sends (or {@code ?lastEventId=}); -1 when absent or not a number. */
  private static long lastEventId(Context ctx) {
    String v = Optional.ofNullable(ctx.header("Last-Event-ID")).orElse(ctx.queryParam("lastEventId"));
    try {
      return v == null ? -1 : Long.parseLong(v.trim());
    } catch (NumberFormatException e) {
      return -1;
    }
  }

  /** An admin write: admin token, body read and parsed, Idempotency-Key honoured. */
  private void adminWrite(Context ctx, boolean emptyIsObject, java.util.function.Function<JsonNode, AdminIdempotency.Answer> work) {
    admin(ctx);
    JsonNode body = bodies.json(ctx, emptyIsObject);
    Optional<String> key = Optional.ofNullable(ctx.header("Idempotency-Key")).filter(k -> !k.isBlank());
    AdminIdempotency.Answer a = key.isPresent()
        ? adminKeys.run(key.get(), ctx.method() + " " + ctx.path(), body, () -> work.apply(body))
        : work.apply(body);
    ctx.status(a.status()).json(a.body());
  }

  /**
   * The tenant whose audit trail the caller may read: the admin token names one with {@code
   * ?tenant=}; a device whose user is an auditor or admin reads its own tenant's.
   */
  private String auditTenant(Context ctx) {
    return readerTenant(ctx, "the audit trail", org.civicsync.core.access.Role.AUDITOR, org.civicsync.core.access.Role.ADMIN);
  }

  /**
   * The tenant whose {@code what} the caller may read: the admin token names one with {@code
   * ?tenant=}; a device whose user has one of {@code roles} reads its own tenant's.
   */
  private String readerTenant(Context ctx, String what, String... roles) {
    Caller c = tenancy.authenticate(bearer(ctx));
    Optional<String> asked = Optional.ofNullable(ctx.queryParam("tenant")).filter(t -> !t.isBlank());
    if (c instanceof Caller.Admin) {
      String t = asked.orElseThrow(() -> new ApiException(ErrorCode.INVALID_REQUEST, "name the tenant: ?tenant=<tenantId>", "tenant"));
      if (store.findTenant(t).isEmpty()) {
        throw new ApiException(ErrorCode.TENANT_NOT_FOUND, "no tenant '" + t + "'", "tenant");
      }
      return t;
    }
    if (c instanceof Caller.Device d && java.util.Arrays.stream(roles).anyMatch(d.access()::hasRole)) {
      if (asked.isPresent() && !asked.get().equals(d.tenantId())) {
        throw new ApiException(ErrorCode.FORBIDDEN, "a device reads " + what + " of its own tenant only");
      }
      return d.tenantId();
    }
    throw new ApiException(ErrorCode.FORBIDDEN, what + " needs the admin token or a device of a user with the role "
        + String.join(" or ", roles));
  }

  /**
   * Before every route: security headers, CORS for configured origins, and the per-caller rate
   * limit (health checks are exempt).
   */
  private void guard(Context ctx) {
    ctx.header("X-Content-Type-Options", "nosniff");
    ctx.header("X-Frame-Options", "DENY");
    ctx.header("Referrer-Policy", "no-referrer");
    ctx.header("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'");
    ctx.header("Cache-Control", "no-store");
    String origin = ctx.header("Origin");
    if (origin != null && corsOrigins.contains(origin)) {
      ctx.header("Access-Control-Allow-Origin", origin);
      ctx.header("Vary", "Origin");
      ctx.header("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE");
      ctx.header("Access-Control-Allow-Headers", "Authorization, Content-Type, Content-Encoding, Idempotency-Key, If-Match, If-None-Match, Prefer, Upload-Key, Upload-Length, Upload-Offset");
      ctx.header("Access-Control-Expose-Headers", "ETag, Retry-After, Preference-Applied, Upload-Offset, Upload-Rate, Server-Timing");
      ctx.header("Access-Control-Max-Age", "600");
    }
    if ("OPTIONS".equals(ctx.method().name())) {
      // A CORS preflight: answered here for any route; allowed origins got their headers above.
      ctx.status(origin != null && corsOrigins.contains(origin) ? 204 : 403);
      ctx.attribute(HANDLED, true);
      ctx.skipRemainingHandlers();
      return;
    }
    if (ctx.path().startsWith("/health/")) {
      return;
    }
    if (draining && ctx.attribute(ADMITTED) == null) {
      // Shutting down: new work goes to another instance (or here again after the restart). A
      // request that arrived before the drain began is in flight: it finishes.
      ctx.header("Connection", "close");
      ctx.header("Retry-After", "1");
      throw new ApiException(ErrorCode.UNAVAILABLE, "the server is shutting down; nothing was changed, retry");
    }
    if (webAppFile(ctx)) {
      // The web app's files are not the API's to ration: a clinic's tablets behind one address
      // loading the app (and their service workers caching it) would share the address's 120
      // requests a minute, and a worker whose caching meets a 429 never installs.
      return;
    }
    String auth = ctx.header("Authorization");
    // Routes without a token (enrollment, renewal) are limited by address, whatever header is sent:
    // a made-up token must not buy a fresh allowance.
    if ((auth == null || auth.isBlank()) && ctx.path().equals("/v1/sync/stream")) {
      // EventSource sends the device token in the query: the stream counts against that token's
      // bucket, not the address's (which many devices behind one proxy share).
      auth = Optional.ofNullable(ctx.queryParam("access_token")).map(t -> "Bearer " + t).orElse(null);
    }
    boolean byAddress = auth == null || auth.isBlank() || ctx.path().startsWith("/v1/devices/");
    long wait = byAddress
        ? limiter.acquire("ip:" + ctx.ip(), 0.1)
        : limiter.acquire("t:" + org.civicsync.core.canonical.Digests.sha256Hex(auth.getBytes(java.nio.charset.StandardCharsets.UTF_8)), 1.0);
    if (wait > 0) {
      ctx.header("Retry-After", Long.toString(wait));
      throw new ApiException(ErrorCode.RATE_LIMITED, "too many requests; retry after " + wait + " s");
    }
  }

  /** A GET or HEAD of a path outside the API and its documents: a file of the web app (or a 404). */
  private static boolean webAppFile(Context ctx) {
    String m = ctx.method().name();
    String p = ctx.path();
    return (m.equals("GET") || m.equals("HEAD")) && !p.startsWith("/v1/") && !p.startsWith("/schemas/") && !p.equals("/openapi.yaml")
        && !p.equals("/metrics");
  }

  private void recordWrite(Context ctx, RecordsService.Write kind) {
    Caller.ApiClient c = apiClient(ctx);
    UUID id = recordId(ctx);
    Optional<com.fasterxml.jackson.databind.node.ObjectNode> body = Optional.empty();
    if (kind != RecordsService.Write.DELETE) {
      JsonNode json = bodies.json(ctx, false);
      if (!json.isObject()) {
        throw new ApiException(ErrorCode.INVALID_REQUEST, "the body must be the record's data, a JSON object", "");
      }
      body = Optional.of((com.fasterxml.jackson.databind.node.ObjectNode) json);
    }
    RecordsService.Written w = records.write(c, ctx.pathParam("collection"), id, kind, ifMatch(ctx),
        "*".equals(Optional.ofNullable(ctx.header("If-None-Match")).map(String::trim).orElse("")), body,
        Optional.ofNullable(ctx.header("Idempotency-Key")).filter(k -> !k.isBlank()));
    ctx.status(w.created() ? 201 : 200).header("ETag", etag(w.record().version())).json(w.record());
  }

  private static Optional<Long> ifMatch(Context ctx) {
    String h = ctx.header("If-Match");
    if (h == null || h.isBlank()) {
      return Optional.empty();
    }
    String v = h.trim();
    if (v.startsWith("W/")) {
      v = v.substring(2);
    }
    v = v.replace("\"", "");
    if (!v.matches("[1-9][0-9]{0,15}")) {
      throw new ApiException(ErrorCode.INVALID_REQUEST, "If-Match must be a record version as its ETag gives it, e.g. \"3\"", "If-Match");
    }
    return Optional.of(Long.parseLong(v));
  }

  /** Whether an {@code If-None-Match} header (a list of entity tags, or {@code *}) names {@code tag} (weak comparison, RFC 9110). */
  static boolean matchesTag(String ifNoneMatch, String tag) {
    if (ifNoneMatch == null) {
      return false;
    }
    for (String t : ifNoneMatch.split(",")) {
      String v = t.trim();
      if (v.equals("*") || (v.startsWith("W/") ? v.substring(2) : v).equals(tag)) {
        return true;
      }
    }
    return false;
  }

  /** Whether the request's {@code Prefer} header (RFC 7240: comma-separated, case-insensitive) asks for {@code return=minimal}. */
  static boolean prefersMinimal(io.javalin.http.Context ctx) {
    for (String header : java.util.Collections.list(ctx.req().getHeaders("Prefer"))) {
      for (String preference : header.split(",")) {
        // A preference may carry parameters after ';' and spaces around '=' (RFC 7240 section 2).
        String token = preference.split(";", 2)[0].replace(" ", "").replace("\t", "");
        if (token.equalsIgnoreCase(org.civicsync.contracts.PushResponse.RETURN_MINIMAL)) {
          return true;
        }
      }
    }
    return false;
  }

  private static String etag(long version) {
    return "\"" + version + "\"";
  }

  private static UUID recordId(Context ctx) {
    try {
      return UUID.fromString(ctx.pathParam("recordId"));
    } catch (IllegalArgumentException e) {
      throw new ApiException(ErrorCode.RECORD_NOT_FOUND, "no record " + ctx.pathParam("recordId"), "recordId", 404, null);
    }
  }

  private Caller.ApiClient apiClient(Context ctx) {
    if (tenancy.authenticate(bearer(ctx)) instanceof Caller.ApiClient c) {
      return c;
    }
    throw new ApiException(ErrorCode.FORBIDDEN, "the records API needs an API-client token (POST /v1/admin/tenants/{tenantId}/api-clients)");
  }

  private void admin(Context ctx) {
    if (!(tenancy.authenticate(bearer(ctx)) instanceof Caller.Admin)) {
      throw new ApiException(ErrorCode.FORBIDDEN, "this route needs the admin token");
    }
  }

  private Caller.Device device(Context ctx) {
    if (tenancy.authenticate(bearer(ctx)) instanceof Caller.Device d) {
      ctx.req().setAttribute(DEVICE, d);
      return d;
    }
    throw new ApiException(ErrorCode.FORBIDDEN, "this route needs a device token; enroll a device first");
  }

  private static Optional<String> bearer(Context ctx) {
    String h = ctx.header("Authorization");
    if (h == null) {
      return Optional.empty();
    }
    if (!h.regionMatches(true, 0, "Bearer ", 0, 7)) {
      throw new ApiException(ErrorCode.UNAUTHENTICATED, "the Authorization header must be 'Bearer <token>'");
    }
    return Optional.of(h.substring(7).trim());
  }

  private static <T> T parse(JsonNode body, SchemaChecker schema, Class<T> type) {
    Optional<Violation> v = schema.firstViolation(body);
    if (v.isPresent()) {
      throw new ApiException(ErrorCode.INVALID_REQUEST, v.get().message(), v.get().pointer());
    }
    try {
      return Json.mapper().treeToValue(body, type);
    } catch (JsonProcessingException e) {
      throw new ApiException(ErrorCode.INVALID_REQUEST, e.getOriginalMessage());
    }
  }

  /** After every request: its time, status and size, by route template (never the concrete path). */
  private void measure(Context ctx) {
    Long started = ctx.attribute(STARTED);
    if (started == null) {
      return;
    }
    String route = Optional.<String>ofNullable(ctx.attribute(ROUTE)).orElse(Boolean.TRUE.equals(ctx.attribute(WEB)) ? "web" : "unmatched");
    long nanos = System.nanoTime() - started;
    // A request whose connection broke mid-body is counted as such, not as the error written after
    // it (a 409 for a cut named push): on a lossy link those are losses, not refusals.
    int status = Boolean.TRUE.equals(ctx.attribute(Bodies.CLIENT_GONE)) ? Bodies.CLIENT_CLOSED : ctx.statusCode();
    metrics.request(ctx.method().name(), route, status, nanos);
    // The route template and status only: a concrete path holds ids, a query may hold a token.
    if (!route.equals("/health/live") && !route.equals("/health/ready") && !route.equals("/metrics")) {
      ACCESS.info("{} {} {} {} ms", ctx.method().name(), route, status, nanos / 1_000_000);
    }
    org.slf4j.MDC.remove(org.civicsync.server.app.logging.RequestIds.MDC_KEY);
  }

  private static final String WEB = "civicsync.web";
  private final java.util.concurrent.atomic.AtomicInteger inFlight = new java.util.concurrent.atomic.AtomicInteger();
  private volatile boolean draining;

  /**
   * Graceful shutdown, first step: from now on new requests get 503 {@code UNAVAILABLE} (and
   * readiness fails, so a load balancer moves traffic away); waits up to {@code max} for the
   * requests in flight — pushes that are committing — to finish. Live streams must be ended
   * before (they never finish on their own).
   *
   * @return whether every request in flight finished in time
   */
  boolean drain(java.time.Duration max) throws InterruptedException {
    draining = true;
    long deadline = System.nanoTime() + max.toNanos();
    synchronized (inFlight) {
      while (inFlight.get() > 0) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          return false;
        }
        inFlight.wait(Math.max(1, left / 1_000_000));
      }
    }
    return true;
  }

  /** Requests being handled now. */
  int inFlight() {
    return inFlight.get();
  }

  /** Counts a request from its arrival until its response was handed to the network. */
  private final class InFlight implements jakarta.servlet.Filter {
    @Override
    public void doFilter(jakarta.servlet.ServletRequest req, jakarta.servlet.ServletResponse plain, jakarta.servlet.FilterChain chain)
        throws java.io.IOException, jakarta.servlet.ServletException {
      inFlight.incrementAndGet();
      // Counted first, then asked: either drain() sees this request counted and waits for it, or
      // this request sees the drain and is refused; never refused once drain() is waiting for it.
      if (!draining) {
        req.setAttribute(ADMITTED, Boolean.TRUE);
      }
      CountingResponse res = new CountingResponse((jakarta.servlet.http.HttpServletResponse) plain);
      java.util.concurrent.atomic.AtomicBoolean finished = new java.util.concurrent.atomic.AtomicBoolean();
      Runnable finish = () -> {
        if (!finished.compareAndSet(false, true)) {
          return;
        }
        long in = Math.max(0, req.getContentLengthLong());
        metrics.bytes(in, res.written());
        if (req.getAttribute(DEVICE) instanceof Caller.Device d) {
          traffic.add(d.tenantId(), d.deviceId(), in, res.written());
        }
        if (inFlight.decrementAndGet() == 0) {
          synchronized (inFlight) {
            inFlight.notifyAll();
          }
        }
      };
      req.setAttribute(FINISH, finish);
      try {
        chain.doFilter(req, res);
        if (!req.isAsyncStarted()) {
          // Completes the response (the last chunk too) before the request counts as done.
          try {
            res.getOutputStream().close();
          } catch (IllegalStateException usedWriter) {
            res.getWriter().close();
          }
        }
      } finally {
        if (req.getAttribute(DEFERRED) == null) {
          finish.run();
        }
      }
    }
  }

  /**
   * An asynchronous request (a live stream) counts as in flight, and its bytes are counted, until
   * its response is complete, not only until its handler returned. Call before anything can
   * complete {@code async}.
   */
  private static void finishWhenComplete(jakarta.servlet.http.HttpServletRequest req, jakarta.servlet.AsyncContext async) {
    if (!(req.getAttribute(FINISH) instanceof Runnable finish)) {
      return;
    }
    async.addListener(new jakarta.servlet.AsyncListener() {
      @Override
      public void onComplete(jakarta.servlet.AsyncEvent e) {
        finish.run();
      }

      @Override
      public void onTimeout(jakarta.servlet.AsyncEvent e) {}

      @Override
      public void onError(jakarta.servlet.AsyncEvent e) {}

      @Override
      public void onStartAsync(jakarta.servlet.AsyncEvent e) {}
    });
    // Only once the listener is in place: otherwise the filter finishes the request as usual.
    req.setAttribute(DEFERRED, Boolean.TRUE);
  }

  /** The request's end-of-request accounting (a Runnable, run once), set by {@link InFlight}. */
  private static final String FINISH = "civicsync.finish";

  /** Set when an asynchronous request runs its {@link #FINISH} on completion instead. */
  private static final String DEFERRED = "civicsync.finishDeferred";

  /** The request's device, once authenticated, for its traffic figures. */
  private static final String DEVICE = "civicsync.device";

  /** Set on a request that arrived before a drain began: it is in flight and may finish. */
  private static final String ADMITTED = "civicsync.admitted";

  /** A response that counts the body bytes written to it (after compression). */
  private static final class CountingResponse extends jakarta.servlet.http.HttpServletResponseWrapper {
    private final java.util.concurrent.atomic.AtomicLong written = new java.util.concurrent.atomic.AtomicLong();
    private jakarta.servlet.ServletOutputStream out;

    CountingResponse(jakarta.servlet.http.HttpServletResponse r) {
      super(r);
    }

    long written() {
      return written.get();
    }

    @Override
    public synchronized jakarta.servlet.ServletOutputStream getOutputStream() throws java.io.IOException {
      if (out == null) {
        jakarta.servlet.ServletOutputStream inner = super.getOutputStream();
        out = new jakarta.servlet.ServletOutputStream() {
          @Override
          public void write(int b) throws java.io.IOException {
            inner.write(b);
            written.incrementAndGet();
          }

          @Override
          public void write(byte[] b, int off, int len) throws java.io.IOException {
            inner.write(b, off, len);
            written.addAndGet(len);
          }

          @Override
          public void flush() throws java.io.IOException {
            inner.flush();
          }

          @Override
          public void close() throws java.io.IOException {
            inner.close();
          }

          @Override
          public boolean isReady() {
            return inner.isReady();
          }

          @Override
          public void setWriteListener(jakarta.servlet.WriteListener listener) {
            inner.setWriteListener(listener);
          }
        };
      }
      return out;
    }
  }

  /**
   * A GET that matched no API route may be for the web app: one of its files, or a route of the
   * app (answered with its index.html). API paths keep their JSON 404.
   */
  private boolean serveWebApp(Context ctx) {
    String path = ctx.path();
    if (Boolean.TRUE.equals(ctx.attribute(HANDLED)) || !"GET".equals(ctx.method().name())
        || path.startsWith("/v1/") || path.equals("/v1") || path.startsWith("/health/") || path.startsWith("/schemas/")
        || path.equals("/openapi.yaml")) {
      return false;
    }
    Optional<org.civicsync.server.app.web.WebApp.Asset> asset = web.find(path);
    if (asset.isEmpty() && path.equals("/")) {
      asset = Optional.of(org.civicsync.server.app.web.WebApp.missing());
    }
    if (asset.isEmpty()) {
      return false;
    }
    // The app loads only its own scripts and styles; the camera preview for QR enrollment needs
    // blob: media, and icons may be data: URLs.
    ctx.header("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
        + "frame-ancestors 'none'; base-uri 'none'; object-src 'none'; form-action 'self'");
    ctx.header("Cache-Control", asset.get().cacheControl());
    ctx.attribute(WEB, true);
    ctx.status(200).contentType(asset.get().contentType()).result(asset.get().bytes());
    return true;
  }

  private static void statusError(Context ctx, int status) {
    if (Boolean.TRUE.equals(ctx.attribute(HANDLED))) {
      return;
    }
    ErrorCode code = switch (status) {
      case 404 -> ErrorCode.NOT_FOUND;
      case 405 -> ErrorCode.METHOD_NOT_ALLOWED;
      case 413 -> ErrorCode.PAYLOAD_TOO_LARGE;
      case 415 -> ErrorCode.UNSUPPORTED_MEDIA_TYPE;
      case 401 -> ErrorCode.UNAUTHENTICATED;
      case 403 -> ErrorCode.FORBIDDEN;
      case 503 -> ErrorCode.UNAVAILABLE;
      default -> status >= 500 ? ErrorCode.INTERNAL : ErrorCode.INVALID_REQUEST;
    };
    String message = switch (code) {
      case NOT_FOUND -> "no route " + ctx.method() + " " + ctx.path();
      case METHOD_NOT_ALLOWED -> "route " + ctx.path() + " does not accept " + ctx.method();
      default -> "HTTP " + status;
    };
    error(ctx, code, ErrorDetail.of(code, message));
    ctx.status(status);
  }

  private static void error(Context ctx, ErrorCode code, ErrorDetail detail) {
    ctx.attribute(HANDLED, true);
    ctx.status(code.perMutation() ? 400 : code.httpStatus()).json(new ErrorResponse(detail));
  }

  static Javalin create(HttpApi api, String host, int port) {
    return Javalin.create(api.configure(host, port));
  }
}
