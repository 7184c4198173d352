package policy

import (
	"fmt"
	"strings"
	"testing"
)

// hundredPolicies is a file of 100 realistic policies, each with a dozen rules.
func hundredPolicies() []byte {
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, `---
apiVersion: security.kubearmor.com/v1
kind: KubeArmorPolicy
metadata:
  name: policy-%d
  namespace: ns-%d
spec:
  severity: 5
  tags: [MITRE, T1059]
  selector:
    matchLabels:
      app: app-%d
  process:
    matchPaths:
    - path: /usr/bin/curl
    - path: /usr/bin/wget
      fromSource:
      - path: /bin/bash
    matchDirectories:
    - dir: /tmp/
      recursive: true
  file:
    action: Audit
    matchPaths:
    - path: /etc/passwd
      readOnly: true
    matchDirectories:
    - dir: /etc/ssh/
      recursive: true
    matchPatterns:
    - pattern: /var/log/*.log
  network:
    matchProtocols:
    - protocol: tcp,udp
  capabilities:
    matchCapabilities:
    - capability: net_raw
  syscalls:
    matchSyscalls:
    - syscall: [unlink, unlinkat, rmdir]
  action: Block
`, i, i%10, i)
	}
	return []byte(b.String())
}

func BenchmarkParse(b *testing.B) {
	data := hundredPolicies()
	b.SetBytes(int64(len(data)))
	var n int
	for b.Loop() {
		ps, _, err := Parse("bench.yaml", data)
		if err != nil {
			b.Fatal(err)
		}
		n = len(ps)
	}
	if n != 100 {
		b.Fatalf("%d policies, want 100", n)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/policy")
}
