package attach

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Names deploy/webhook.yaml gives the webhook's objects.
const (
	// ConfigName is the MutatingWebhookConfiguration whose caBundle Ward fills.
	ConfigName = "ward"
	// SecretName is the Secret, in Ward's namespace, that holds the webhook's certificate.
	SecretName = "ward-webhook-tls"
	// MutatePath is the path the configuration's webhook calls.
	MutatePath = "/mutate-pods"
)

// refreshEvery is how often the certificate and the caBundle are checked again: a re-applied
// configuration or a certificate close to its end is mended within this time.
const refreshEvery = 10 * time.Minute

// configPoll is how often Serve asks for the webhook configuration until it exists.
const configPoll = 5 * time.Second

// ServeOptions configure Serve.
type ServeOptions struct {
	// Addr is the address to listen on (":9443").
	Addr   string
	Client kubernetes.Interface
	// Namespace holds the certificate's Secret (Ward's own namespace).
	Namespace string
	Handler   *Handler
	Log       *slog.Logger
}

// Serve serves the admission webhook over HTTPS until ctx ends. It waits for the webhook
// configuration (ConfigName) to exist, keeps a certificate for the host names it reaches the
// webhook by in the Secret SecretName, and fills the configuration's caBundle with its CA.
func Serve(ctx context.Context, o ServeOptions) error {
	lis, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("admission webhook: %w", err)
	}
	var cert atomic.Pointer[tls.Certificate]
	if err := refresh(ctx, o, &cert); err != nil {
		lis.Close()
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(MutatePath, &admission.Webhook{
		Handler: o.Handler,
		LogConstructor: func(logr.Logger, *admission.Request) logr.Logger {
			return logr.FromSlogHandler(o.Log.Handler())
		},
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				return cert.Load(), nil
			},
		},
	}
	go func() {
		// The first refresh is done above: the next one is due after refreshEvery.
		_ = wait.PollUntilContextCancel(ctx, refreshEvery, false, func(ctx context.Context) (bool, error) {
			if err := refresh(ctx, o, &cert); err != nil {
				o.Log.Warn("admission webhook: certificate refresh", "error", err)
			}
			return false, nil
		})
		srv.Close()
	}()
	o.Log.Info("admission webhook listening", "address", lis.Addr().String(), "path", MutatePath)
	if err := srv.ServeTLS(lis, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admission webhook: %w", err)
	}
	return nil
}

// refresh waits for the webhook configuration, then makes sure the Secret's certificate serves
// its host names and the caBundle names its CA, and stores the certificate in cert.
func refresh(ctx context.Context, o ServeOptions, cert *atomic.Pointer[tls.Certificate]) error {
	configs := o.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	var cfg *admissionregistrationv1.MutatingWebhookConfiguration
	warned := false
	if err := wait.PollUntilContextCancel(ctx, configPoll, true, func(ctx context.Context) (bool, error) {
		var err error
		if cfg, err = configs.Get(ctx, ConfigName, metav1.GetOptions{}); err == nil {
			return true, nil
		}
		if !warned {
			o.Log.Warn("admission webhook: waiting for its configuration (deploy/webhook.yaml); until then new pods do not get Ward's AppArmor profiles",
				"mutatingwebhookconfiguration", ConfigName, "error", err)
			warned = true
		}
		return false, nil
	}); err != nil {
		return err
	}
	hosts := hostsOf(refsOf(cfg))
	if len(hosts) == 0 {
		return fmt.Errorf("admission webhook: mutatingwebhookconfiguration %s has no webhook with a service or url", ConfigName)
	}
	b, issued, err := ensureCert(ctx, o.Client, o.Namespace, SecretName, hosts, time.Now())
	if err != nil {
		return fmt.Errorf("admission webhook: certificate in secret %s/%s: %w", o.Namespace, SecretName, err)
	}
	if issued {
		o.Log.Info("admission webhook: certificate issued", "secret", o.Namespace+"/"+SecretName, "hosts", hosts)
	}
	pair, err := tls.X509KeyPair(b.certPEM, b.keyPEM)
	if err != nil {
		return fmt.Errorf("admission webhook: certificate in secret %s/%s: %w", o.Namespace, SecretName, err)
	}
	cert.Store(&pair)
	patched := false
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := configs.Get(ctx, ConfigName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		changed := false
		for i := range cur.Webhooks {
			if !sameBundle(cur.Webhooks[i].ClientConfig.CABundle, b.caPEM) {
				cur.Webhooks[i].ClientConfig.CABundle = b.caPEM
				changed = true
			}
		}
		if !changed {
			return nil
		}
		_, err = configs.Update(ctx, cur, metav1.UpdateOptions{})
		patched = err == nil
		return err
	})
	if err != nil {
		return fmt.Errorf("admission webhook: caBundle of mutatingwebhookconfiguration %s: %w", ConfigName, err)
	}
	if patched {
		o.Log.Info("admission webhook: caBundle filled", "mutatingwebhookconfiguration", ConfigName)
	}
	return nil
}

func refsOf(cfg *admissionregistrationv1.MutatingWebhookConfiguration) []clientConfig {
	var refs []clientConfig
	for _, w := range cfg.Webhooks {
		var r clientConfig
		if s := w.ClientConfig.Service; s != nil {
			r.service, r.namespace = s.Name, s.Namespace
		}
		if w.ClientConfig.URL != nil {
			if u, err := url.Parse(*w.ClientConfig.URL); err == nil {
				r.urlHost = u.Hostname()
			}
		}
		refs = append(refs, r)
	}
	return refs
}
