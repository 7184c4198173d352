package events

// Alert and log types, in KubeArmor's vocabulary.
const (
	TypeMatchedPolicy     = "MatchedPolicy"
	TypeMatchedHostPolicy = "MatchedHostPolicy"
	TypeSystemEvent       = "SystemEvent"
	TypeContainerLog      = "ContainerLog"
	TypeHostLog           = "HostLog"
)

// OpAlertThreshold is the Operation of the SystemEvent alert that announces throttling.
const OpAlertThreshold = "AlertThreshold"

// UpdatedTimeLayout is KubeArmor's UpdatedTime format, always in UTC.
const UpdatedTimeLayout = "2006-01-02T15:04:05.000000Z"
