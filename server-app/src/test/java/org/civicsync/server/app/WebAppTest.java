package org.civicsync.server.app;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.civicsync.server.app.web.WebApp;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The server serves the web app at / beside the API, with headers that suit its service worker. */
class WebAppTest {
  @TempDir Path dist;

  private void build() throws Exception {
    Files.createDirectories(dist.resolve("assets"));
    Files.writeString(dist.resolve("index.html"), "<!doctype html><title>CivicSync</title><script type=module src=/assets/app-1a2b.js></script>");
    Files.writeString(dist.resolve("assets/app-1a2b.js"), "console.log('app')");
    Files.writeString(dist.resolve("sw.js"), "self.addEventListener('install', () => {})");
    Files.writeString(dist.resolve("manifest.webmanifest"), "{\"name\":\"CivicSync\"}");
    Files.writeString(dist.getParent().resolve("secret.txt"), "not for the web");
  }

  @Test
  void filesRoutesAndTraversalAreToldApart() throws Exception {
    build();
    WebApp app = WebApp.of(Optional.of(dist));
    assertThat(app.present()).isTrue();
    assertThat(app.find("/").orElseThrow().cacheControl()).isEqualTo("no-cache");
    assertThat(app.find("/assets/app-1a2b.js").orElseThrow()).satisfies(a -> {
      assertThat(a.contentType()).startsWith("text/javascript");
      assertThat(a.cacheControl()).as("hashed names never change").contains("immutable");
    });
    assertThat(app.find("/sw.js").orElseThrow().cacheControl()).as("a new release must reach the browser").isEqualTo("no-cache");
    assertThat(app.find("/manifest.webmanifest").orElseThrow().contentType()).isEqualTo("application/manifest+json");
    assertThat(new String(app.find("/inbox/item").orElseThrow().bytes())).as("a route of the app gets its page").contains("<title>CivicSync");
    assertThat(app.find("/assets/missing.js")).as("a missing file is not the page").isEmpty();
    assertThat(app.find("/../secret.txt")).isEmpty();
    assertThat(app.find("/assets/../../secret.txt")).isEmpty();
    assertThat(WebApp.of(Optional.of(dist.resolve("nothing-here"))).present()).isFalse();
  }

  @Test
  void theServerServesTheAppAtTheRootAndKeepsApiErrorsInJson() throws Exception {
    build();
    ServerConfig config = ServerConfig.defaults().withHost("127.0.0.1").withPort(0)
        .withDataDir(Files.createTempDirectory("civicsync-web-test")).withAdminToken(Optional.of("csa_web-test-admin-token-00000000000000000000"))
        .withWebDir(Optional.of(dist));
    try (CivicSyncServer server = CivicSyncServer.start(config)) {
      HttpClient http = HttpClient.newHttpClient();
      String base = "http://127.0.0.1:" + server.port();
      HttpResponse<String> page = http.send(HttpRequest.newBuilder(URI.create(base + "/")).build(), HttpResponse.BodyHandlers.ofString());
      assertThat(page.statusCode()).isEqualTo(200);
      assertThat(page.headers().firstValue("Content-Type").orElseThrow()).startsWith("text/html");
      assertThat(page.headers().firstValue("Content-Security-Policy").orElseThrow()).contains("default-src 'self'");
      assertThat(page.body()).contains("app-1a2b.js");
      HttpResponse<String> asset = http.send(HttpRequest.newBuilder(URI.create(base + "/assets/app-1a2b.js")).build(),
          HttpResponse.BodyHandlers.ofString());
      assertThat(asset.headers().firstValue("Cache-Control").orElseThrow()).contains("immutable");
      HttpResponse<String> api = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/nowhere")).build(), HttpResponse.BodyHandlers.ofString());
      assertThat(api.statusCode()).isEqualTo(404);
      assertThat(api.body()).contains("\"NOT_FOUND\"");
      HttpResponse<String> wrongMethod = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/sync/push")).build(),
          HttpResponse.BodyHandlers.ofString());
      assertThat(wrongMethod.statusCode()).isEqualTo(405);
      HttpResponse<String> missing = http.send(HttpRequest.newBuilder(URI.create(base + "/assets/gone.js")).build(),
          HttpResponse.BodyHandlers.ofString());
      assertThat(missing.statusCode()).isEqualTo(404);
    }
  }
}
