package rules

import "github.com/wardsec/ward/internal/policy"

// NetworkAccess returns the socket a program typically opens for a protocol name, so that
// `ward simulate --protocol tcp` and tests can speak in the names policies use.
func NetworkAccess(name string) Access {
	a := Access{Op: policy.OpNetwork, Family: "inet"}
	switch name {
	case "tcp":
		a.SockType, a.Protocol = "stream", "tcp"
	case "udp":
		a.SockType, a.Protocol = "dgram", "udp"
	case "icmp":
		a.SockType, a.Protocol = "dgram", "icmp"
	case "icmpv6":
		a.Family, a.SockType, a.Protocol = "inet6", "dgram", "icmpv6"
	case "sctp":
		a.SockType, a.Protocol = "seqpacket", "sctp"
	case "dccp":
		a.SockType, a.Protocol = "dccp", "dccp"
	case "raw":
		a.SockType = "raw"
	case "packet":
		a.Family, a.SockType = "packet", "raw"
	case "stream", "dgram", "seqpacket", "rdm":
		a.SockType = name
	default:
		a.Protocol = name
	}
	return a
}
