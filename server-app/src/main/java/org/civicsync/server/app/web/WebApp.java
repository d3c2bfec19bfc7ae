package org.civicsync.server.app.web;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * The web app's files and how to answer a browser's request for one.
 *
 * <p>The build names every file under {@code assets/} by a hash of its content, so those are
 * cached for a year; {@code index.html}, {@code sw.js} and the manifest must be checked on every
 * visit (a new release changes them), so they are served with {@code no-cache}. A path that names
 * no file and has no extension is a client-side route of the app and gets {@code index.html}.
 */
public final class WebApp {
  /** Where the {@code civicsync-web} artifact puts the build on the class path. */
  public static final String CLASSPATH_ROOT = "org/civicsync/web/app/";

  private static final Map<String, String> TYPES = Map.ofEntries(
      Map.entry("html", "text/html; charset=utf-8"),
      Map.entry("js", "text/javascript; charset=utf-8"),
      Map.entry("mjs", "text/javascript; charset=utf-8"),
      Map.entry("css", "text/css; charset=utf-8"),
      Map.entry("json", "application/json"),
      Map.entry("webmanifest", "application/manifest+json"),
      Map.entry("svg", "image/svg+xml"),
      Map.entry("png", "image/png"),
      Map.entry("ico", "image/x-icon"),
      Map.entry("txt", "text/plain; charset=utf-8"),
      Map.entry("woff2", "font/woff2"));

  /** A file to send. */
  public record Asset(byte[] bytes, String contentType, String cacheControl) {}

  private final Optional<Path> dir;
  private final Map<String, Asset> cache = new HashMap<>();

  private WebApp(Optional<Path> dir) {
    this.dir = dir;
  }

  /**
   * The app from {@code dir} when given (read on every request, so a rebuild shows without a
   * restart), otherwise from the class path.
   */
  public static WebApp of(Optional<Path> dir) {
    return new WebApp(dir.map(d -> d.toAbsolutePath().normalize()));
  }

  /** Whether there is an app to serve at all (its {@code index.html} exists). */
  public boolean present() {
    return read("index.html").isPresent();
  }

  /**
   * The answer to {@code GET path}, if the app has one: the file, or {@code index.html} for a
   * route of the app. Empty for anything else, including paths that try to leave the app's root.
   */
  public Optional<Asset> find(String path) {
    String rel = path.startsWith("/") ? path.substring(1) : path;
    if (rel.isEmpty()) {
      rel = "index.html";
    }
    if (rel.contains("..") || rel.contains("\\") || rel.contains("//") || rel.indexOf('\0') >= 0) {
      return Optional.empty();
    }
    Optional<Asset> file = read(rel);
    if (file.isPresent()) {
      return file;
    }
    String last = rel.substring(rel.lastIndexOf('/') + 1);
    return last.contains(".") ? Optional.empty() : read("index.html");
  }

  private Optional<Asset> read(String rel) {
    if (dir.isPresent()) {
      Path file = dir.get().resolve(rel).normalize();
      if (!file.startsWith(dir.get()) || !Files.isRegularFile(file)) {
        return Optional.empty();
      }
      try {
        return Optional.of(asset(rel, Files.readAllBytes(file)));
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    synchronized (cache) {
      Asset hit = cache.get(rel);
      if (hit != null) {
        return Optional.of(hit);
      }
      try (InputStream in = WebApp.class.getClassLoader().getResourceAsStream(CLASSPATH_ROOT + rel)) {
        if (in == null) {
          return Optional.empty();
        }
        Asset a = asset(rel, in.readAllBytes());
        cache.put(rel, a);
        return Optional.of(a);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
  }

  private static Asset asset(String rel, byte[] bytes) {
    String ext = rel.substring(rel.lastIndexOf('.') + 1).toLowerCase(Locale.ROOT);
    String type = TYPES.getOrDefault(ext, "application/octet-stream");
    String cache = rel.startsWith("assets/") ? "public, max-age=31536000, immutable" : "no-cache";
    return new Asset(bytes, type, cache);
  }

  /** The page served at {@code /} when the server was built without the web app. */
  public static Asset missing() {
    String html = "<!doctype html><meta charset=utf-8><title>CivicSync</title>"
        + "<p>The CivicSync server is running, but it was built without the web app. "
        + "Build it with <code>mvn -pl server-app -am package</code> (which builds <code>web/</code> with npm), "
        + "or serve a build with <code>serve --web-dir web/dist</code>. The API is at <a href=/openapi.yaml>/openapi.yaml</a>.</p>";
    return new Asset(html.getBytes(StandardCharsets.UTF_8), "text/html; charset=utf-8", "no-cache");
  }
}
