package bpflsm

// knownDifferences lists the conformance accesses whose outcome under BPF-LSM
// differs from rules.Decide, keyed "case/index", with the reason. An unlisted
// difference fails the test, and so does a listed one that no longer differs.
// TestTranslationAgreesWithDecide reads the same list.
var knownDifferences = map[string]string{}
