package bpflsm

// knownDifferences lists the conformance accesses whose outcome under BPF-LSM
// differs from rules.Decide, keyed "case/index", with the reason. An unlisted
// difference fails the test, and so does a listed one that no longer differs.
// TestTranslationAgreesWithDecide reads the same list.
var knownDifferences = map[string]string{
	"audit-readonly-dry-run/0":                auditDryRun,
	"audit-readonly-dry-run/1":                auditDryRun,
	"audit-owneronly-dry-run/0":               auditDryRun,
	"audit-owneronly-dry-run/1":               auditDryRun,
	"audit-owneronly-dry-run/2":               auditDryRun,
	"audit-readonly-owneronly-dry-run/0":      auditDryRun,
	"audit-readonly-owneronly-dry-run/1":      auditDryRun,
	"audit-readonly-owneronly-dry-run/2":      auditDryRun,
	"fromsource-allow-before-general-block/0": "the kernel program lets a Block bit win over any Allow bit; rules limited by fromSource do not decide first yet (issue 13, item 2)",
}

const auditDryRun = "the kernel program reports the accesses inside an Audit rule's readOnly/ownerOnly set, not the ones Block would deny (issue 13, item 1)"
