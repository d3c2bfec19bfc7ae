package org.civicsync.server.app.logging;

import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.classic.spi.IThrowableProxy;
import ch.qos.logback.classic.spi.StackTraceElementProxy;
import ch.qos.logback.classic.spi.ThrowableProxyUtil;
import ch.qos.logback.core.CoreConstants;
import ch.qos.logback.core.LayoutBase;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.time.Instant;
import java.util.Locale;
import java.util.Map;

/**
 * One log line per event: JSON by default ({@code ts}, {@code level}, {@code logger},
 * {@code msg}, the MDC entries such as {@code requestId}, and {@code error} with the stack trace),
 * or text when {@code CIVICSYNC_LOG_FORMAT=text} (or the system property
 * {@code civicsync.log.format}) says so.
 */
public final class LogLayout extends LayoutBase<ILoggingEvent> {
  private static final JsonFactory JSON = new JsonFactory();
  private final boolean text;

  public LogLayout() {
    String format = System.getProperty("civicsync.log.format", System.getenv().getOrDefault("CIVICSYNC_LOG_FORMAT", "json"));
    this.text = format.trim().toLowerCase(Locale.ROOT).equals("text");
  }

  @Override
  public String doLayout(ILoggingEvent e) {
    return text ? text(e) : json(e);
  }

  private static String text(ILoggingEvent e) {
    StringBuilder b = new StringBuilder().append(Instant.ofEpochMilli(e.getTimeStamp())).append(' ').append(e.getLevel()).append(' ')
        .append(e.getLoggerName()).append(" - ").append(e.getFormattedMessage());
    String rid = e.getMDCPropertyMap().get(RequestIds.MDC_KEY);
    if (rid != null) {
      b.append(" [").append(rid).append(']');
    }
    b.append(CoreConstants.LINE_SEPARATOR);
    if (e.getThrowableProxy() != null) {
      b.append(ThrowableProxyUtil.asString(e.getThrowableProxy())).append(CoreConstants.LINE_SEPARATOR);
    }
    return b.toString();
  }

  private static String json(ILoggingEvent e) {
    StringWriter w = new StringWriter(256);
    try (JsonGenerator g = JSON.createGenerator(w)) {
      g.writeStartObject();
      g.writeStringField("ts", Instant.ofEpochMilli(e.getTimeStamp()).toString());
      g.writeStringField("level", e.getLevel().toString());
      g.writeStringField("logger", e.getLoggerName());
      g.writeStringField("msg", e.getFormattedMessage());
      for (Map.Entry<String, String> m : e.getMDCPropertyMap().entrySet()) {
        g.writeStringField(m.getKey(), m.getValue());
      }
      g.writeStringField("thread", e.getThreadName());
      IThrowableProxy t = e.getThrowableProxy();
      if (t != null) {
        g.writeObjectFieldStart("error");
        g.writeStringField("type", t.getClassName());
        g.writeStringField("message", t.getMessage());
        StringBuilder stack = new StringBuilder();
        for (StackTraceElementProxy s : t.getStackTraceElementProxyArray()) {
          stack.append(s.getSTEAsString()).append('\n');
        }
        g.writeStringField("stack", stack.toString());
        g.writeEndObject();
      }
      g.writeEndObject();
    } catch (IOException ex) {
      throw new UncheckedIOException(ex);
    }
    return w.append(CoreConstants.LINE_SEPARATOR).toString();
  }
}
