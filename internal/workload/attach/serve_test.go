package attach

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

func TestEnsureCert(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientset()
	now := time.Now()
	hosts := []string{"ward-webhook.kubearmor.svc", "ward-webhook.kubearmor.svc.cluster.local"}
	first, issued, err := ensureCert(ctx, c, "kubearmor", SecretName, hosts, now)
	if err != nil || !issued {
		t.Fatalf("first: issued %v, err %v; want a new certificate", issued, err)
	}
	if err := first.usable(hosts, now); err != nil {
		t.Fatalf("issued certificate does not serve %v: %v", hosts, err)
	}
	// A second daemon (another node) reuses the Secret: one CA for the one caBundle.
	again, issued, err := ensureCert(ctx, c, "kubearmor", SecretName, hosts, now)
	if err != nil || issued || !bytes.Equal(again.caPEM, first.caPEM) {
		t.Fatalf("second: issued %v, err %v, same CA %v; want the stored certificate", issued, err, bytes.Equal(again.caPEM, first.caPEM))
	}
	// A host the certificate does not name, or a certificate near its end, is issued anew.
	more := append(hosts, "127.0.0.1")
	if err := first.usable(more, now); err == nil {
		t.Fatal("certificate claims to serve 127.0.0.1")
	}
	renewed, issued, err := ensureCert(ctx, c, "kubearmor", SecretName, more, now)
	if err != nil || !issued || renewed.usable(more, now) != nil {
		t.Fatalf("new host: issued %v, err %v", issued, err)
	}
	late := now.Add(certValidity - renewBefore/2)
	if _, issued, err := ensureCert(ctx, c, "kubearmor", SecretName, more, late); err != nil || !issued {
		t.Fatalf("near its end: issued %v, err %v; want a new certificate", issued, err)
	}
}

func TestHostsOf(t *testing.T) {
	got := hostsOf([]clientConfig{{service: "ward-webhook", namespace: "kubearmor"}, {urlHost: "127.0.0.1"}, {service: "ward-webhook", namespace: "kubearmor"}})
	want := []string{"ward-webhook.kubearmor.svc", "ward-webhook.kubearmor.svc.cluster.local", "127.0.0.1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("hostsOf = %v, want %v", got, want)
	}
}

// TestServe runs the production path: the daemon fills the configuration's caBundle, and a
// client that trusts only that caBundle (as the API server does) gets a patch for a new pod.
func TestServe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	url := "https://" + addr + MutatePath
	c := fake.NewClientset(&admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: ConfigName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "apparmor.pods.ward.io", ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url},
		}},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ServeOptions{Addr: addr, Client: c, Namespace: "kubearmor", Handler: &Handler{},
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	var ca []byte
	deadline := time.Now().Add(10 * time.Second)
	for len(ca) == 0 {
		cfg, err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, ConfigName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ca = cfg.Webhooks[0].ClientConfig.CABundle
		if time.Now().After(deadline) {
			t.Fatal("caBundle not filled after 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		t.Fatalf("caBundle is not PEM: %q", ca)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}

	raw, err := json.Marshal(rsPod())
	if err != nil {
		t.Fatal(err)
	}
	review, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "1", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Namespace: "shop",
			Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var resp *http.Response
	for {
		resp, err = client.Post(url, "application/json", bytes.NewReader(review))
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	var out admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out.Response == nil || !out.Response.Allowed || !bytes.Contains(out.Response.Patch, []byte("ward-shop_web_nginx")) {
		t.Fatalf("response %+v; want allowed with a patch naming ward-shop_web_nginx", out.Response)
	}
}
