package org.civicsync.testing;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;

/**
 * A private {@code nats-server} with JetStream for one test, on a free port of 127.0.0.1 and a
 * temporary store directory. It never touches a NATS the machine already runs (such as the one on
 * 4222): it picks its own port and only ever signals the process it started.
 *
 * <p>{@link #stop()} and {@link #start()} restart it on the same port and store directory, so
 * streams and messages survive, as they would across a broker restart in production. {@link
 * #close()} stops it and deletes the directory.
 *
 * <p>The binary is {@code $NATS_SERVER_BIN}, else {@code nats-server} on the {@code PATH}, else
 * {@code /usr/sbin/nats-server}. When none exists the test fails with a message saying so, unless
 * {@code CIVICSYNC_ALLOW_NO_NATS=1}, in which case it is skipped (with a loud line on stderr, so a
 * skipped NATS suite does not pass unnoticed).
 */
public final class NatsTestServer implements AutoCloseable {
  private static final long READY_TIMEOUT_MS = 15_000;

  private final Path binary;
  private final Path dir;
  private final Path storeDir;
  private final Path logFile;
  private final int port;
  private Process process;

  /** Finds the binary, picks a port and creates the store directory; does not start the server. */
  public NatsTestServer() {
    this.binary = findBinary();
    try {
      this.dir = Files.createTempDirectory("civicsync-nats-");
      this.storeDir = Files.createDirectory(dir.resolve("store"));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    this.logFile = dir.resolve("nats-server.log");
    this.port = freePort();
  }

  /** A started server. */
  public static NatsTestServer launch() {
    NatsTestServer server = new NatsTestServer();
    try {
      server.start();
    } catch (RuntimeException e) {
      server.close();
      throw e;
    }
    return server;
  }

  public int port() {
    return port;
  }

  public String url() {
    return "nats://127.0.0.1:" + port;
  }

  public boolean isRunning() {
    return process != null && process.isAlive();
  }

  /** Starts the process and returns once its port accepts connections. */
  public void start() {
    if (isRunning()) {
      return;
    }
    List<String> command =
        List.of(
            binary.toString(), "-js", "-a", "127.0.0.1", "-p", Integer.toString(port), "-sd", storeDir.toString());
    try {
      process =
          new ProcessBuilder(command)
              .redirectErrorStream(true)
              .redirectOutput(ProcessBuilder.Redirect.appendTo(logFile.toFile()))
              .start();
    } catch (IOException e) {
      throw new UncheckedIOException("could not start " + command, e);
    }
    long deadline = System.currentTimeMillis() + READY_TIMEOUT_MS;
    while (true) {
      if (!process.isAlive()) {
        throw new IllegalStateException(
            "nats-server exited with " + process.exitValue() + " before accepting connections; log:\n" + log());
      }
      try (Socket socket = new Socket()) {
        socket.connect(new InetSocketAddress("127.0.0.1", port), 200);
        return;
      } catch (IOException notYet) {
        if (System.currentTimeMillis() > deadline) {
          process.destroyForcibly();
          throw new IllegalStateException(
              "nats-server did not accept connections on " + port + " within " + READY_TIMEOUT_MS + " ms; log:\n" + log());
        }
        sleep(25);
      }
    }
  }

  /** Stops the process with SIGTERM (a clean shutdown that keeps JetStream's data) and waits for it. */
  public void stop() {
    if (process == null) {
      return;
    }
    if (process.isAlive()) {
      signal("CONT"); // a paused process would not act on SIGTERM
    }
    process.destroy();
    try {
      if (!process.waitFor(10, TimeUnit.SECONDS)) {
        process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      process.destroyForcibly();
    }
    process = null;
  }

  /**
   * Freezes the process (SIGSTOP) without closing its sockets: clients stay connected but get no
   * answers, like a broker that hangs or a network that drops packets. {@link #resume()} undoes it.
   */
  public void pause() {
    signal("STOP");
  }

  /** Lets a {@link #pause() paused} process run again (SIGCONT). */
  public void resume() {
    signal("CONT");
  }

  private void signal(String name) {
    if (!isRunning()) {
      throw new IllegalStateException("nats-server is not running");
    }
    try {
      // Only ever our own child, by its pid.
      Process kill = new ProcessBuilder("kill", "-" + name, Long.toString(process.pid())).inheritIO().start();
      if (kill.waitFor() != 0) {
        throw new IllegalStateException("kill -" + name + " " + process.pid() + " failed");
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  /** Stops the process and deletes the store directory and log. */
  @Override
  public void close() {
    stop();
    try (Stream<Path> files = Files.walk(dir)) {
      files.sorted(Comparator.reverseOrder()).map(Path::toFile).forEach(File::delete);
    } catch (IOException e) {
      // A temp directory left behind is not worth failing a test over.
    }
  }

  /** What the server wrote so far, for failure messages. */
  public String log() {
    try {
      return Files.exists(logFile) ? Files.readString(logFile) : "";
    } catch (IOException e) {
      return "(log unreadable: " + e + ")";
    }
  }

  private static Path findBinary() {
    String fromEnv = System.getenv("NATS_SERVER_BIN");
    if (fromEnv != null && !fromEnv.isBlank()) {
      Path path = Paths.get(fromEnv);
      if (!Files.isExecutable(path)) {
        throw new IllegalStateException("NATS_SERVER_BIN=" + fromEnv + " is not an executable file");
      }
      return path;
    }
    String pathVar = System.getenv().getOrDefault("PATH", "");
    for (String entry : pathVar.split(File.pathSeparator)) {
      if (!entry.isEmpty()) {
        Path candidate = Paths.get(entry, "nats-server");
        if (Files.isExecutable(candidate)) {
          return candidate;
        }
      }
    }
    Path fallback = Paths.get("/usr/sbin/nats-server");
    if (Files.isExecutable(fallback)) {
      return fallback;
    }
    String message =
        "No nats-server binary: set NATS_SERVER_BIN, put nats-server on the PATH or install it at "
            + "/usr/sbin/nats-server (apt-get install nats-server)";
    if ("1".equals(System.getenv("CIVICSYNC_ALLOW_NO_NATS"))) {
      System.err.println("!!!!! SKIPPING NATS TESTS: " + message + " (CIVICSYNC_ALLOW_NO_NATS=1) !!!!!");
      Assumptions.abort(message);
    }
    throw new IllegalStateException(message + "; or set CIVICSYNC_ALLOW_NO_NATS=1 to skip these tests");
  }

  private static int freePort() {
    try (ServerSocket socket = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      return socket.getLocalPort();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while waiting for nats-server", e);
    }
  }
}
