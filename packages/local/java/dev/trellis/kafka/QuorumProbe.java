/*
 * Trellis: describe a KRaft quorum with Kafka's own Admin client (docs/adr/0027-kafka-kraft-cluster.md).
 *
 * Usage: QuorumProbe <client.properties>...
 *
 * For each client config (bootstrap.controllers or bootstrap.servers, and its SSL settings), one
 * Admin#describeMetadataQuorum, the call behind kafka-metadata-quorum.sh, printed as one line
 * "TRELLIS-QUORUM <json>": the voters and observers with their log end offsets and fetch times, or the
 * exception that stopped it (e.g. ClusterAuthorizationException, SslAuthenticationException), so that
 * a test can tell which layer refused a caller. Exits 0 once every config was tried.
 *
 * Compiled at first use against the pinned kafka-clients (packages/local/src/harness/kafka-principal.ts).
 */
package dev.trellis.kafka;

import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.List;
import java.util.OptionalLong;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.QuorumInfo;

/** One describeMetadataQuorum per client config, each result as a JSON line on stdout. */
public final class QuorumProbe {
  private QuorumProbe() {}

  public static void main(String[] args) throws IOException {
    if (args.length == 0) {
      System.err.println("usage: QuorumProbe <client.properties>...");
      System.exit(2);
    }
    for (String file : args) {
      Properties props = new Properties();
      try (InputStream in = new FileInputStream(file)) {
        props.load(in);
      }
      String result;
      try (Admin admin = Admin.create(props)) {
        QuorumInfo q = admin.describeMetadataQuorum().quorumInfo().get(60, TimeUnit.SECONDS);
        result =
            "{\"ok\":true,\"leaderId\":"
                + q.leaderId()
                + ",\"leaderEpoch\":"
                + q.leaderEpoch()
                + ",\"highWatermark\":"
                + q.highWatermark()
                + ",\"voters\":"
                + replicas(q.voters())
                + ",\"observers\":"
                + replicas(q.observers())
                + "}";
      } catch (Exception e) {
        Throwable cause = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
        result =
            "{\"ok\":false,\"error\":"
                + str(cause.getClass().getName())
                + ",\"message\":"
                + str(String.valueOf(cause.getMessage()))
                + "}";
      }
      System.out.println("TRELLIS-QUORUM {\"config\":" + str(file) + ",\"result\":" + result + "}");
    }
    System.out.flush();
    // Admin threads may linger after close; the answer is printed.
    System.exit(0);
  }

  private static String replicas(List<QuorumInfo.ReplicaState> list) {
    StringBuilder b = new StringBuilder("[");
    for (QuorumInfo.ReplicaState r : list) {
      if (b.length() > 1) b.append(',');
      b.append("{\"id\":")
          .append(r.replicaId())
          .append(",\"logEndOffset\":")
          .append(r.logEndOffset())
          .append(",\"lastFetchTimestamp\":")
          .append(opt(r.lastFetchTimestamp()))
          .append(",\"lastCaughtUpTimestamp\":")
          .append(opt(r.lastCaughtUpTimestamp()))
          .append('}');
    }
    return b.append(']').toString();
  }

  private static String opt(OptionalLong v) {
    return v.isPresent() ? Long.toString(v.getAsLong()) : "null";
  }

  private static String str(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      if (c == '"' || c == '\\') b.append('\\').append(c);
      else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
      else b.append(c);
    }
    return b.append('"').toString();
  }
}
