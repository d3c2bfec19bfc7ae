package org.civicsync.client.store.sqlite;

import java.nio.charset.StandardCharsets;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Types;
import org.civicsync.client.crypto.AtRestCipher;

/**
 * How a column that can hold personal data is stored: UTF-8 text as TEXT in a plaintext file; in
 * an encrypted one, {@link AtRestCipher#seal} of the UTF-8 bytes as a BLOB, with the value's
 * context (table, column and row key) as associated data, so a value copied to another row or
 * column does not open.
 */
final class Codec {
  private final AtRestCipher cipher;

  Codec(AtRestCipher cipher) {
    this.cipher = cipher;
  }

  boolean encrypted() {
    return cipher != null;
  }

  /** Binds {@code plain} (UTF-8; {@code null} for SQL NULL) to parameter {@code index}. */
  void bind(PreparedStatement ps, int index, byte[] plain, String context) throws SQLException {
    if (plain == null) {
      ps.setNull(index, cipher == null ? Types.VARCHAR : Types.BLOB);
    } else if (cipher == null) {
      ps.setString(index, new String(plain, StandardCharsets.UTF_8));
    } else {
      ps.setBytes(index, cipher.seal(plain, context));
    }
  }

  /**
   * The plaintext of column {@code column}; {@code null} for SQL NULL.
   *
   * @throws AtRestCipher.WrongKeyException when a sealed value does not open under this key and
   *     context (altered, or moved from another row)
   */
  byte[] read(ResultSet rs, String column, String context) throws SQLException {
    if (cipher == null) {
      String s = rs.getString(column);
      return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
    }
    byte[] sealed = rs.getBytes(column);
    return sealed == null ? null : cipher.open(sealed, context);
  }

  // Contexts: "<table>/<column>/<row key>". Record ids and mutation ids are UUIDs (fixed length,
  // no '/'), so a context names exactly one cell even when a collection name holds a '/'.

  static String recordContext(String column, String collection, String recordId) {
    return "records/" + column + "/" + collection + "/" + recordId;
  }

  static String outboxContext(String column, String mutationId) {
    return "outbox/" + column + "/" + mutationId;
  }

  static String settingContext(String key) {
    return "settings/" + key;
  }
}
