package selinux

import "github.com/wardsec/ward/internal/auditlog"

// NetlinkSource reads the AVC records from the audit netlink socket's read-only multicast group:
// every record, whether or not auditd runs, and not rate-limited like /dev/kmsg. It needs
// CAP_AUDIT_READ.
func NetlinkSource() RecordSource { return auditlog.Netlink(TypeAVC) }
