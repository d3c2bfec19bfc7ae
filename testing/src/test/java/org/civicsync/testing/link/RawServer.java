package org.civicsync.testing.link;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/** A plain TCP server on loopback; each connection is handed to the handler on its own thread. */
final class RawServer implements AutoCloseable {
  @FunctionalInterface
  interface Handler {
    void handle(Socket socket) throws IOException;
  }

  private final ServerSocket listener;
  private final Set<Socket> sockets = ConcurrentHashMap.newKeySet();

  RawServer(Handler handler) throws IOException {
    listener = new ServerSocket(0, 128, InetAddress.getByAddress(new byte[] {127, 0, 0, 1}));
    Thread.ofVirtual()
        .start(
            () -> {
              while (!listener.isClosed()) {
                try {
                  Socket s = listener.accept();
                  sockets.add(s);
                  Thread.ofVirtual()
                      .start(
                          () -> {
                            try (s) {
                              handler.handle(s);
                            } catch (IOException ignored) {
                              // Resets are what these tests are about.
                            } finally {
                              sockets.remove(s);
                            }
                          });
                } catch (IOException e) {
                  return;
                }
              }
            });
  }

  /** Sends back every byte it receives, then closes. */
  static RawServer echo() throws IOException {
    return new RawServer(
        s -> {
          s.getInputStream().transferTo(s.getOutputStream());
          s.shutdownOutput();
        });
  }

  /** Reads everything and answers nothing. */
  static RawServer sink() throws IOException {
    return new RawServer(s -> s.getInputStream().transferTo(OutputStream.nullOutputStream()));
  }

  InetSocketAddress address() {
    return new InetSocketAddress(listener.getInetAddress(), listener.getLocalPort());
  }

  @Override
  public void close() throws IOException {
    listener.close();
    for (Socket s : sockets) {
      s.close();
    }
  }
}
