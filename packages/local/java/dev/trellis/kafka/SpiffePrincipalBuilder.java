/*
 * Trellis: Kafka principals from SPIFFE X.509-SVIDs (docs/adr/0006-kafka-spiffe-principals.md).
 *
 * Kafka's default SSL principal is the certificate's subject DN; SVIDs carry their identity in a URI SAN
 * and may leave the subject empty, which yields the empty principal "User:". This builder returns
 * "User:<SPIFFE ID>" for a peer certificate with exactly one spiffe:// URI SAN, and ANONYMOUS otherwise
 * (with allow.everyone.if.no.acl.found=false, ANONYMOUS is refused everything).
 *
 * Compiled at install time against the pinned kafka-clients (packages/local/src/harness/kafka.ts).
 */
package dev.trellis.kafka;

import java.security.cert.Certificate;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.util.Collection;
import java.util.List;
import javax.net.ssl.SSLPeerUnverifiedException;
import org.apache.kafka.common.security.auth.AuthenticationContext;
import org.apache.kafka.common.security.auth.KafkaPrincipal;
import org.apache.kafka.common.security.auth.KafkaPrincipalBuilder;
import org.apache.kafka.common.security.auth.SslAuthenticationContext;
import org.apache.kafka.common.security.authenticator.DefaultKafkaPrincipalBuilder;

/** principal.builder.class for SSL listeners whose clients present SPIFFE X.509-SVIDs. */
public final class SpiffePrincipalBuilder implements KafkaPrincipalBuilder {
  /** subjectAltName type of a URI (RFC 5280 GeneralName uniformResourceIdentifier [6]). */
  private static final int SAN_URI = 6;

  /**
   * The wire format of principals forwarded from brokers to the controller (KafkaPrincipalSerde):
   * the default builder's, which does not depend on its mappers.
   */
  private final DefaultKafkaPrincipalBuilder serde = new DefaultKafkaPrincipalBuilder(null, null);

  /** Kafka instantiates principal builders with a no-arg constructor. */
  public SpiffePrincipalBuilder() {}

  @Override
  public KafkaPrincipal build(AuthenticationContext context) {
    if (!(context instanceof SslAuthenticationContext)) return KafkaPrincipal.ANONYMOUS;
    SslAuthenticationContext ssl = (SslAuthenticationContext) context;
    String id = spiffeId(ssl);
    return id == null ? KafkaPrincipal.ANONYMOUS : new KafkaPrincipal(KafkaPrincipal.USER_TYPE, id);
  }

  /** The peer's SPIFFE ID, or null when it presented none, or more than one (SPIFFE X.509-SVID §2). */
  static String spiffeId(SslAuthenticationContext ssl) {
    Certificate[] chain;
    try {
      chain = ssl.session().getPeerCertificates();
    } catch (SSLPeerUnverifiedException e) {
      return null;
    }
    if (chain.length == 0 || !(chain[0] instanceof X509Certificate)) return null;
    Collection<List<?>> sans;
    try {
      sans = ((X509Certificate) chain[0]).getSubjectAlternativeNames();
    } catch (CertificateParsingException e) {
      return null;
    }
    if (sans == null) return null;
    String found = null;
    for (List<?> san : sans) {
      if (san.size() < 2 || !(san.get(0) instanceof Integer) || (Integer) san.get(0) != SAN_URI)
        continue;
      Object value = san.get(1);
      if (!(value instanceof String) || !((String) value).startsWith("spiffe://")) continue;
      if (found != null) return null;
      found = (String) value;
    }
    return found;
  }

  @Override
  public byte[] serialize(KafkaPrincipal principal) {
    return serde.serialize(principal);
  }

  @Override
  public KafkaPrincipal deserialize(byte[] bytes) {
    return serde.deserialize(bytes);
  }
}
