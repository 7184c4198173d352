package attach

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The webhook's certificate is issued by a CA Ward makes itself and kept in a Secret, so that
// every node's daemon serves the same certificate and the API server trusts it through the one
// caBundle of the webhook configuration. No cert-manager is needed; an operator who prefers one
// can fill the Secret and the caBundle themselves: Ward uses a Secret that is valid for the
// webhook's host names and leaves it as it is.

const (
	certValidity = 10 * 365 * 24 * time.Hour
	// renewBefore: a certificate closer than this to its end is issued anew.
	renewBefore = 30 * 24 * time.Hour
	caKey       = "ca.crt" // the Secret key of the CA certificate (as cert-manager names it)
)

// bundle is the certificate the webhook serves and the CA that signed it.
type bundle struct {
	certPEM, keyPEM, caPEM []byte
}

// issue makes a CA and a serving certificate for hosts (DNS names or IP addresses).
func issue(hosts []string, now time.Time) (bundle, error) {
	caKeyPair, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return bundle{}, err
	}
	ca := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "ward-webhook-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKeyPair.PublicKey, caKeyPair)
	if err != nil {
		return bundle{}, err
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return bundle{}, err
	}
	leaf := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			leaf.IPAddresses = append(leaf.IPAddresses, ip)
		} else {
			leaf.DNSNames = append(leaf.DNSNames, h)
		}
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return bundle{}, err
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &leafKey.PublicKey, caKeyPair)
	if err != nil {
		return bundle{}, err
	}
	keyDER, err := x509.MarshalECPrivateKey(leafKey)
	if err != nil {
		return bundle{}, err
	}
	return bundle{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		caPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
	}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

// usable says why b cannot serve hosts at now, or nil when it can: it must parse, chain to its
// CA, name every host, and not end within renewBefore.
func (b bundle) usable(hosts []string, now time.Time) error {
	pair, err := tls.X509KeyPair(b.certPEM, b.keyPEM)
	if err != nil {
		return err
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(b.caPEM) {
		return errors.New("no CA certificate")
	}
	for _, h := range hosts {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: h, Roots: roots, CurrentTime: now}); err != nil {
			return err
		}
	}
	if now.Add(renewBefore).After(leaf.NotAfter) {
		return fmt.Errorf("certificate ends %s", leaf.NotAfter.Format(time.RFC3339))
	}
	return nil
}

// ensureCert returns the certificate kept in the Secret namespace/name, first issuing it (or
// issuing it anew when it does not fit hosts or is about to end). Daemons of several nodes may
// race: the first create wins and the others read what it wrote.
func ensureCert(ctx context.Context, c kubernetes.Interface, namespace, name string, hosts []string, now time.Time) (bundle, bool, error) {
	secrets := c.CoreV1().Secrets(namespace)
	for range 5 {
		cur, err := secrets.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			b, err := issue(hosts, now)
			if err != nil {
				return bundle{}, false, err
			}
			_, err = secrets.Create(ctx, secretOf(namespace, name, b), metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				continue // another node's daemon was first: use its certificate
			}
			return b, true, err
		case err != nil:
			return bundle{}, false, err
		}
		b := bundle{certPEM: cur.Data[corev1.TLSCertKey], keyPEM: cur.Data[corev1.TLSPrivateKeyKey], caPEM: cur.Data[caKey]}
		if b.usable(hosts, now) == nil {
			return b, false, nil
		}
		b, err = issue(hosts, now)
		if err != nil {
			return bundle{}, false, err
		}
		next := secretOf(namespace, name, b)
		next.ResourceVersion = cur.ResourceVersion
		_, err = secrets.Update(ctx, next, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			continue
		}
		return b, true, err
	}
	return bundle{}, false, fmt.Errorf("secret %s/%s: changed under us 5 times in a row", namespace, name)
}

func secretOf(namespace, name string, b bundle) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name,
			Labels: map[string]string{"app.kubernetes.io/name": "ward"}},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: b.certPEM, corev1.TLSPrivateKeyKey: b.keyPEM, caKey: b.caPEM},
	}
}

// hostsOf lists the names the API server uses to reach the webhooks of a configuration: the
// Service's DNS names for a service reference, the URL's host otherwise.
func hostsOf(refs []clientConfig) []string {
	var hosts []string
	add := func(h string) {
		if h != "" && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	for _, r := range refs {
		if r.service != "" {
			add(r.service + "." + r.namespace + ".svc")
			add(r.service + "." + r.namespace + ".svc.cluster.local")
		}
		add(r.urlHost)
	}
	return hosts
}

// clientConfig is what hostsOf needs of one webhook's clientConfig.
type clientConfig struct {
	service, namespace, urlHost string
}

// sameBundle says whether a caBundle already holds ca.
func sameBundle(caBundle, ca []byte) bool {
	return bytes.Equal(bytes.TrimSpace(caBundle), bytes.TrimSpace(ca))
}
