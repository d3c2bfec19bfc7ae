package org.civicsync.server.app;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.Callable;
import org.civicsync.client.CivicSyncClient;
import org.civicsync.client.ClientException;
import org.civicsync.client.ClientStatus;
import org.civicsync.client.Listeners;
import org.civicsync.client.SyncEvent;
import org.civicsync.client.outbox.OutboxEntry;
import org.civicsync.client.store.LocalStore;
import org.civicsync.client.store.sqlite.SqliteLocalStore;
import org.civicsync.client.transport.ApiError;
import org.civicsync.client.transport.Transport;
import org.civicsync.client.transport.UrlConnectionTransport;
import org.civicsync.core.json.Json;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/**
 * {@code civicsync client}: a command-line field client on the Java SDK, with its data in one
 * SQLite file (encrypted at rest when {@code CIVICSYNC_CLIENT_PASSPHRASE} is set). Every command
 * works offline except {@code enroll} and {@code sync}.
 */
@Command(name = "client", mixinStandardHelpOptions = true,
    description = "A field client on the SDK: local records and outbox in one file; sync when there is a network.",
    subcommands = {ClientCommand.Enroll.class, ClientCommand.Create.class, ClientCommand.Update.class, ClientCommand.Delete.class,
        ClientCommand.ListRecords.class, ClientCommand.Import.class, ClientCommand.Sync.class, ClientCommand.Status.class,
        ClientCommand.Outbox.class})
final class ClientCommand implements Runnable {
  static final String SERVER_URL = "cli.serverUrl";
  static final String PASSPHRASE_ENV = "CIVICSYNC_CLIENT_PASSPHRASE";

  @Option(names = "--db", required = true, paramLabel = "FILE", description = "The client's database file (created if missing).")
  Path db;

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(System.out);
  }

  /** Opens the store (encrypted when the passphrase is set) and a client talking to the enrolled server. */
  Session open() {
    LocalStore store = openStore();
    Optional<String> url = store.transaction(tx -> tx.setting(SERVER_URL));
    Transport t = url.<Transport>map(u -> new UrlConnectionTransport(URI.create(u))).orElse(r -> {
      throw new IOException("this client is not enrolled with a server yet: run enroll first");
    });
    return new Session(store, CivicSyncClient.builder().store(store).transport(t).build());
  }

  LocalStore openStore() {
    String pass = System.getenv(PASSPHRASE_ENV);
    if (pass != null && !pass.isEmpty()) {
      return SqliteLocalStore.openWithPassphrase(db, pass.toCharArray());
    }
    SqliteLocalStore store = SqliteLocalStore.open(db);
    boolean warned = store.transaction(tx -> {
      boolean before = tx.setting("cli.warnedPlaintext").isPresent();
      tx.putSetting("cli.warnedPlaintext", "yes");
      return before;
    });
    if (!warned) {
      System.err.println("warning: " + PASSPHRASE_ENV + " is not set: " + db + " is not encrypted at rest (said once per file)");
    }
    return store;
  }

  /** A store and its client, closed together. */
  record Session(LocalStore store, CivicSyncClient client) implements AutoCloseable {
    @Override
    public void close() {
      client.close();
      store.close();
    }
  }

  abstract static class Sub implements Callable<Integer> {
    @ParentCommand ClientCommand parent;

    @Override
    public Integer call() throws Exception {
      try (Session s = parent.open()) {
        return run(s);
      } catch (ClientException e) {
        System.err.println(e.code() + ": " + e.getMessage() + e.field().map(f -> " (" + f + ")").orElse(""));
        return 2;
      }
    }

    abstract int run(Session s) throws Exception;
  }

  static ObjectNode object(String json) throws IOException {
    JsonNode n = Json.mapper().readTree(json);
    if (n == null || !n.isObject()) {
      throw new ClientException("INVALID_REQUEST", "--data must be a JSON object");
    }
    return (ObjectNode) n;
  }

  @Command(name = "enroll", description = "Enroll this client with an enrollment code (needs the network).")
  static final class Enroll extends Sub {
    @Option(names = "--server", required = true, description = "The server's URL, e.g. https://sync.example.org") String server;
    @Option(names = "--code", required = true) String code;
    @Option(names = "--name", defaultValue = "command-line client") String name;

    @Override
    public Integer call() throws Exception {
      try (LocalStore store = parent.openStore()) {
        store.transaction(tx -> {
          tx.putSetting(SERVER_URL, server);
          return null;
        });
        try (CivicSyncClient c = CivicSyncClient.builder().store(store).transport(new UrlConnectionTransport(URI.create(server))).build()) {
          var e = c.enroll(code, name);
          System.out.println("enrolled device " + e.deviceId() + " for " + e.userId() + " in tenant " + e.tenantId());
          return 0;
        } catch (ApiError e) {
          System.err.println(e.getMessage());
          return 3;
        }
      }
    }

    @Override
    int run(Session s) {
      throw new IllegalStateException("enroll opens its own store");
    }
  }

  @Command(name = "create", description = "Create a record; prints its id.")
  static final class Create extends Sub {
    @Parameters(index = "0") String collection;
    @Option(names = "--data", required = true, description = "The record as a JSON object.") String data;

    @Override
    int run(Session s) throws Exception {
      System.out.println(s.client().collection(collection).create(object(data)));
      return 0;
    }
  }

  @Command(name = "update", description = "Change fields of a record (null removes a field).")
  static final class Update extends Sub {
    @Parameters(index = "0") String collection;
    @Parameters(index = "1") UUID recordId;
    @Option(names = "--data", required = true) String data;

    @Override
    int run(Session s) throws Exception {
      s.client().collection(collection).update(recordId, object(data));
      return 0;
    }
  }

  @Command(name = "delete", description = "Delete a record.")
  static final class Delete extends Sub {
    @Parameters(index = "0") String collection;
    @Parameters(index = "1") UUID recordId;

    @Override
    int run(Session s) {
      s.client().collection(collection).delete(recordId);
      return 0;
    }
  }

  @Command(name = "list", description = "List a collection's records as the device sees them.")
  static final class ListRecords extends Sub {
    @Parameters(index = "0") String collection;
    @Option(names = "--json", description = "One JSON object per line.") boolean json;

    @Override
    int run(Session s) throws Exception {
      for (Map.Entry<UUID, ObjectNode> e : s.client().collection(collection).all()) {
        if (json) {
          ObjectNode line = Json.mapper().createObjectNode().put("recordId", e.getKey().toString());
          line.set("data", e.getValue());
          System.out.println(Json.mapper().writeValueAsString(line));
        } else {
          System.out.println(e.getKey() + "  " + Json.mapper().writeValueAsString(e.getValue()));
        }
      }
      return 0;
    }
  }

  @Command(name = "import", description = "Create one record per line of a JSON Lines file (e.g. a spreadsheet export).")
  static final class Import extends Sub {
    @Parameters(index = "0") String collection;
    @Option(names = "--file", required = true) Path file;

    @Override
    int run(Session s) throws Exception {
      int ok = 0;
      int line = 0;
      int bad = 0;
      try (BufferedReader in = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
        for (String text; (text = in.readLine()) != null; ) {
          line++;
          if (text.trim().isEmpty()) {
            continue;
          }
          try {
            s.client().collection(collection).create(object(text));
            ok++;
          } catch (ClientException | IOException e) {
            bad++;
            System.err.println("line " + line + ": " + e.getMessage());
          }
        }
      }
      System.out.println(ok + " record(s) created" + (bad > 0 ? ", " + bad + " line(s) refused" : ""));
      return bad == 0 ? 0 : 2;
    }
  }

  @Command(name = "sync", description = "Push the outbox, then pull until caught up. Exit 0 only when nothing is left pending.")
  static final class Sync extends Sub {
    @Override
    int run(Session s) {
      s.client().addSyncListener(new Listeners.SyncListener() {
        private long total = -1;

        @Override
        public void progress(int pushed, int pulled, long toSend) {
          if (total < 0) {
            total = pushed + toSend;
          }
          int width = 30;
          int done = total == 0 ? width : (int) Math.min(width, width * pushed / Math.max(1, total));
          System.err.print("\r[" + "#".repeat(done) + " ".repeat(width - done) + "] pushed " + pushed + "/" + total + ", pulled " + pulled);
        }

        @Override
        public void event(SyncEvent e) {
          if (e instanceof SyncEvent.Rejected r) {
            System.err.println();
            System.err.println("refused: " + r.collection() + " " + r.recordId() + ": " + r.code() + " " + r.message());
          }
        }
      });
      try {
        CivicSyncClient.SyncReport r = s.client().sync();
        System.err.println();
        System.out.println("pushed " + r.pushed() + ", pulled " + r.pulled() + "; pending " + r.status().pending() + ", rejected "
            + r.status().rejected() + ", conflicts " + r.status().conflicts());
        return r.status().pending() == 0 ? 0 : 1;
      } catch (IOException e) {
        System.err.println();
        System.err.println("cannot reach the server (" + e.getMessage() + "); the outbox is kept");
        return 4;
      } catch (ApiError e) {
        System.err.println();
        System.err.println("the server refused: " + e.getMessage());
        return 5;
      }
    }
  }

  @Command(name = "status", description = "Pending, rejected and conflicting changes, and the last sync.")
  static final class Status extends Sub {
    @Option(names = "--json") boolean json;

    @Override
    int run(Session s) throws Exception {
      ClientStatus st = s.client().status();
      Map<String, Object> out = new LinkedHashMap<>();
      out.put("pending", st.pending());
      out.put("rejected", st.rejected());
      out.put("conflicts", st.conflicts());
      out.put("lastSyncAt", st.lastSyncAt().map(Object::toString).orElse(null));
      out.put("enrolled", s.client().enrolled());
      if (json) {
        System.out.println(Json.mapper().writeValueAsString(out));
      } else {
        out.forEach((k, v) -> System.out.println(k + ": " + v));
      }
      return 0;
    }
  }

  @Command(name = "outbox", description = "The outbox entries with their state.")
  static final class Outbox extends Sub {
    @Option(names = "--json") boolean json;

    @Override
    int run(Session s) throws Exception {
      List<OutboxEntry> entries = s.client().outbox();
      for (OutboxEntry e : entries) {
        if (json) {
          ObjectNode line = Json.mapper().createObjectNode().put("mutationId", e.mutationId().toString()).put("deviceSeq", e.deviceSeq())
              .put("state", e.state().wire()).put("collection", e.mutation().collection())
              .put("recordId", e.mutation().recordId().toString()).put("op", e.mutation().op().name().toLowerCase(java.util.Locale.ROOT))
              .put("attempts", e.attempts());
          e.result().filter(r -> r.error() != null).ifPresent(r -> line.put("error", r.error().code() + ": " + r.error().message()));
          System.out.println(Json.mapper().writeValueAsString(line));
        } else {
          System.out.println(e.deviceSeq() + "  " + e.state().wire() + "  " + e.mutation().op() + " " + e.mutation().collection() + " "
              + e.mutation().recordId() + e.result().filter(r -> r.error() != null).map(r -> "  " + r.error().code()).orElse(""));
        }
      }
      return 0;
    }
  }
}
