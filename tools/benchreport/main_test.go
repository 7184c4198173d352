package main

import (
	"fmt"
	"strings"
	"testing"
)

const run1 = `=== RUN   BenchmarkReport
ward-bench-note	apparmor	net100: refused
ward-bench-row	apparmor	open+close, cached	no Ward program	10000	1.0000
ward-bench-row	apparmor	open+close, cached	1 rule	11000	1.1000
ward-bench-row	bpflsm	open+close, cached	no Ward program	10000	1.0000
ward-bench-row	bpflsm	open+close, cached	floor: a program that returns at once on each of Ward's hooks	10400	1.0400
ward-bench-row	bpflsm	open+close, cached	1 rule	10500	1.0500
ward-bench-row	bpflsm	execve (static binary)	no Ward program	10000	1.0000
ward-bench-row	bpflsm	execve (static binary)	1 rule	10600	1.0600
ok
`

func TestParseAndRender(t *testing.T) {
	page := renderRuns(t, "linux-image-x", run1, strings.NewReplacer("10500\t1.0500", "10550\t1.0550", "11000\t1.1000", "11200\t1.1200").Replace(run1))
	requireLines(t, page,
		"## BPF-LSM\n", "## AppArmor\n", "## Side by side",
		"|  | 1 rule | 10,500 | 1.050 | 1.055 | 0.47 % |",
		"largest difference of any figure between them is 1.79 % (AppArmor, open+close, cached, 1 rule)",
		"| open+close, cached | 1 rule | 1.050 | 1.100 |",
		"- Commit: abc subject",
		"## Targets",
		// The target is below the floor; execve has no floor row.
		"| open+close, cached | 1 rule | 1.03 | 1.050 / 1.055 | no: below the floor | 1.040 | 1.100 | yes |",
		"| execve (static binary) | 1 rule | 1.05 | 1.060 / 1.060 | no | - | - | - |",
		"0 of 2 bounded rows meet their target; 1 of the others have a target below their access's floor.",
		"- net100: refused\n",
		"1 of 7 figures differ by more than 1 % between runs.",
		"| AppArmor | open+close, cached | 1 rule | 11,000 / 11,200 | 1.79 % |",
	)
	if strings.Index(page, "## BPF-LSM") > strings.Index(page, "## AppArmor") {
		t.Errorf("AppArmor's table before BPF-LSM's:\n%s", page)
	}
}

// TestGrowth: each row of many rules is compared with its access's one-rule row, per run, and
// met only if no run grew by more than 1 %.
func TestGrowth(t *testing.T) {
	const rows = `ward-bench-row	bpflsm	open+close, first open	no Ward program	10000	1.0000
ward-bench-row	bpflsm	open+close, first open	1 rule	10500	1.0500
ward-bench-row	bpflsm	open+close, first open	1 rule + 1 directory rule	10540	1.0540
ward-bench-row	bpflsm	open+close, first open	10,000 rules	10550	1.0550
ward-bench-row	bpflsm	open+close, first open	10,000 rules, the exact paths' names varied	13000	1.3000
ward-bench-row	bpflsm	send+recv	100 rules	10300	1.0300
ward-bench-row	apparmor	open+close, first open	no Ward program	10000	1.0000
ward-bench-row	apparmor	open+close, first open	1 rule	11000	1.1000
ward-bench-row	apparmor	open+close, first open	10,000 rules	11000	1.1000
`
	page := renderRuns(t, "linux-image-x", rows, strings.Replace(rows, "10550\t1.0550", "10700\t1.0700", 1))
	requireLines(t, page,
		"## Growth with the number of rules",
		// Within 1 % in the first run, not in the second: not met.
		"| BPF-LSM | open+close, first open | 10,000 rules | +0.48 % / +1.90 % | no | +0.09 % / +1.52 % |",
		"| BPF-LSM | open+close, first open | 10,000 rules, the exact paths' names varied | +23.81 % / +23.81 % | no | +23.34 % / +23.34 % |",
		// AppArmor has no row of one rule of each kind.
		"| AppArmor | open+close, first open | 10,000 rules | +0.00 % / +0.00 % | - | - |",
		"0 of 2 BPF-LSM rows of many rules cost at most 1 % more than one rule; 0 of 2 at most 1 % more than one rule of each kind.",
	)
	// One rule of each kind is not a row of many rules.
	if strings.Contains(page, "| BPF-LSM | open+close, first open | 1 rule + 1 directory rule |") {
		t.Errorf("one rule of each kind is in the growth table:\n%s", page)
	}
	// An access without a one-rule row has nothing to grow from.
	if strings.Contains(page, "| BPF-LSM | send+recv |") {
		t.Errorf("send+recv, which has no one-rule row, is in the growth table:\n%s", page)
	}
	if page := renderRuns(t, "linux-image-x", rows, rows); !strings.Contains(page, "| BPF-LSM | open+close, first open | 10,000 rules | +0.48 % / +0.48 % | yes | +0.09 % / +0.09 % |") {
		t.Errorf("a growth of 0.48 %% in both runs is not met:\n%s", page)
	}
}

func TestParseErrors(t *testing.T) {
	for name, in := range map[string]string{
		"nothing":   "ok\n",
		"fields":    "ward-bench-row\tbpflsm\topen\n",
		"number":    "ward-bench-row\tbpflsm\topen\t1 rule\tx\t1\n",
		"duplicate": "ward-bench-row\tb\ta\tv\t1\t1\nward-bench-row\tb\ta\tv\t1\t1\n",
	} {
		if _, err := parse(name, strings.NewReader(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestDaemonFigures(t *testing.T) {
	in := "=== RUN BenchmarkReport\n" +
		"ward-bench-figure\tbpflsm\tpolicy edit to enforced, p50 of 50\t231.456\tms\n" +
		"ward-bench-figure\tapparmor\tpolicy edit to enforced, p50 of 50\t1690.000\tms\n"
	page := renderRuns(t, "", in, strings.Replace(in, "231.456", "240.000", 1))
	requireLines(t, page,
		"## The daemon\n",
		"| figure | BPF-LSM | BPF-LSM, run 2 | AppArmor | AppArmor, run 2 |",
		"| policy edit to enforced, p50 of 50 | 231.5 ms | 240.0 ms | 1690.0 ms | 1690.0 ms |",
		"1 of 2 figures differ by more than 1 % between runs.",
		"| BPF-LSM | the daemon | policy edit to enforced, p50 of 50 | 231.5 ms / 240.0 ms | 3.56 % |",
	)
	for name, in := range map[string]string{
		"fields":    "ward-bench-figure\tbpflsm\tx\n",
		"number":    "ward-bench-figure\tbpflsm\tx\ty\tms\n",
		"duplicate": "ward-bench-figure\tb\tx\t1\tms\nward-bench-figure\tb\tx\t1\tms\n",
	} {
		if _, err := parse(name, strings.NewReader(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestMonitorFigures(t *testing.T) {
	in := "=== RUN BenchmarkReport\n" +
		"ward-bench-figure\tbpflsm\tpolicy edit to enforced, p50 of 50\t231.456\tms\n" +
		"ward-bench-figure\tmonitor\topen+close, ratio\t1.300\tx\n" +
		"ward-bench-figure\tmonitor\tpaced: CPU of the reader and decoder, per event\t26778.317\tns\n" +
		"ward-bench-figure\tmonitor\tpaced: records lost\t0.000\trecords\n" +
		"ward-bench-figure\tmonitor\tCPU of the monitor at 100,000 events/s\t2.991\tCPUs\n"
	page := renderRuns(t, "", in, strings.Replace(in, "26778.317", "27500.000", 1))
	requireLines(t, page,
		"## The daemon\n",
		"| figure | BPF-LSM | BPF-LSM, run 2 |\n",
		"## The system monitor\n",
		"| figure | value | run 2 | difference |",
		"| open+close, ratio | 1.300 | 1.300 | 0.00 % |",
		"| paced: CPU of the reader and decoder, per event | 26,778 ns | 27,500 ns | 2.62 % |",
		"| paced: records lost | 0 records | 0 records | 0.00 % |",
		"| CPU of the monitor at 100,000 events/s | 2.99 CPUs | 2.99 CPUs | 0.00 % |",
		"largest difference of any figure between them is 2.62 % (the system monitor, paced: CPU of the reader and decoder, per event)",
		"1 of 5 figures differ by more than 1 % between runs.",
		"| - | the system monitor | paced: CPU of the reader and decoder, per event | 26,778 ns / 27,500 ns | 2.62 % |",
	)
	// The monitor is not a backend of the daemon's table.
	daemon := page[strings.Index(page, "## The daemon"):strings.Index(page, "## The system monitor")]
	if strings.Contains(daemon, "monitor") || strings.Contains(daemon, "open+close") {
		t.Errorf("the daemon's table has the monitor's figures:\n%s", daemon)
	}
	// Without daemon figures, no daemon table.
	c, err := parse("run1", strings.NewReader(strings.Replace(in, "ward-bench-figure\tbpflsm\tpolicy edit to enforced, p50 of 50\t231.456\tms\n", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if page := render([]run{c}, "make bench-vm", "", "abc"); strings.Contains(page, "## The daemon") || !strings.Contains(page, "## The system monitor") {
		t.Errorf("monitor-only page:\n%s", page)
	}
}

// renderRuns renders the page of the runs parsed from texts, each text one run.
func renderRuns(t *testing.T, kernel string, texts ...string) string {
	t.Helper()
	var runs []run
	for i, text := range texts {
		r, err := parse(fmt.Sprintf("run%d", i+1), strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	return render(runs, "make bench-vm", kernel, "abc subject")
}

// requireLines fails the test for each of wants that page lacks.
func requireLines(t *testing.T, page string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
}
