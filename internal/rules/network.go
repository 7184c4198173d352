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
		if f, ok := policy.FamilyOfProtocol(name); ok {
			// A socket of that family, of the type its protocols use most (RDS: seqpacket).
			a.Family, a.SockType = f, familySockType(f)
			break
		}
		a.Protocol = name
	}
	return a
}

// familySockType is the usual socket type of a family, for NetworkAccess.
func familySockType(f string) string {
	switch f {
	case "inet", "inet6", "unix":
		return "stream"
	case "packet":
		return "raw"
	case "rds", "tipc":
		return "seqpacket"
	}
	return "dgram"
}

// familyKey is the index key of rules about an address family ("af_" + the family).
func familyKey(family string) string { return "af_" + family }
