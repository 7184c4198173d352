package apparmor

import (
	"fmt"
	"slices"
	"strings"

	"github.com/wardsec/ward/internal/policy"
	"github.com/wardsec/ward/internal/rules"
)

// AppArmor mediates socket creation by address family and socket type only: the kernel matches
// (family, type) and never the protocol, and it has no name for SOCK_DCCP. Policies name
// protocols. So the network section is computed per (family, type) cell: each cell is asked of
// rules.Decide for every protocol a socket of that cell can carry, and the cell gets the strictest
// verdict among them. When they differ, the profile denies more than Decide does and Render
// warns.

type netCell struct {
	family, sockType string
	// protocols are the protocol names (as policies spell them) sockets of this cell carry; ""
	// stands for a socket whose protocol no policy names.
	protocols []string
	// unfolded are protocols a socket of this cell can also carry but that are left out of the
	// cell's verdict, because folding them in would deny far more than the rule asks: a Block
	// of sctp would block every TCP socket. A Block of them is not enforced in this cell, and
	// Render warns.
	unfolded []string
}

var netCells = []netCell{
	{"inet", "stream", []string{"tcp"}, []string{"sctp"}},
	{"inet", "dgram", []string{"udp", "icmp"}, nil},
	{"inet", "seqpacket", []string{"sctp"}, nil},
	{"inet", "rdm", []string{""}, nil},
	{"inet", "raw", []string{"", "icmp", "tcp", "udp", "sctp"}, nil},
	{"inet6", "stream", []string{"tcp"}, []string{"sctp"}},
	{"inet6", "dgram", []string{"udp", "icmpv6"}, nil},
	{"inet6", "seqpacket", []string{"sctp"}, nil},
	{"inet6", "rdm", []string{""}, nil},
	{"inet6", "raw", []string{"", "icmpv6", "tcp", "udp", "sctp"}, nil},
	{"unix", "stream", []string{""}, nil},
	{"unix", "dgram", []string{""}, nil},
	{"unix", "seqpacket", []string{""}, nil},
	{"packet", "raw", []string{""}, nil},
	{"packet", "dgram", []string{""}, nil},
}

// sockTypes are the socket types AppArmor can name; every family not listed in netCells is
// treated alike (Decide looks at the family only for "packet").
var sockTypes = []string{"stream", "dgram", "seqpacket", "rdm", "raw", "packet"}

func protoName(p string) string {
	if p == "" {
		return "a socket of another protocol"
	}
	return p
}

func describe(v rules.Verdict) string {
	if v.Posture {
		return fmt.Sprintf("%s (default posture)", v.Action)
	}
	if v.Policy == "" {
		return fmt.Sprintf("%s (no rule)", v.Action)
	}
	return fmt.Sprintf("%s (policy %s, %s)", v.Action, v.Policy, v.Rule)
}

func (r *renderer) network(c *ctx) {
	b := r.blanketFor(policy.OpNetwork, c)
	o := Origin{Kind: OriginPosture, RuleID: -1, Source: c.source}
	r.emit(o, c.indent, "# Network (AppArmor mediates socket family and type, not protocol).")
	if len(r.set.RulesFor(policy.OpNetwork)) == 0 {
		if b != blanketNone {
			r.emit(o, c.indent, "%snetwork,", b.prefix())
		}
		return
	}

	// DCCP sockets have a type AppArmor cannot name: the only way to deny them while permitting
	// the rest is a blanket listing every type it can name.
	dccp4 := r.decideTTY(rules.Access{Op: policy.OpNetwork, Family: "inet", SockType: "dccp", Protocol: "dccp", Source: c.source})
	dccp6 := r.decideTTY(rules.Access{Op: policy.OpNetwork, Family: "inet6", SockType: "dccp", Protocol: "dccp", Source: c.source})
	dccp := worst(dccp4, dccp6)
	if dccp.Action == policy.ActionBlock && dccp4.Action != dccp6.Action {
		// An address-family rule (af_inet6) decides one family's DCCP sockets only.
		r.warnVerdict(dccp, "AppArmor has no name for DCCP sockets: they are denied in both inet and inet6, although inet is %s and inet6 %s", describe(dccp4), describe(dccp6))
	}
	switch {
	case b == blanketNone:
		if dccp.Action != policy.ActionBlock {
			r.warnVerdict(dccp, "AppArmor has no name for DCCP sockets and this profile grants no blanket network rule, so DCCP sockets are denied although the policy says %s", describe(dccp))
		}
	case dccp.Action == policy.ActionBlock:
		for _, t := range sockTypes {
			r.emit(verdictOrigin(dccp, c), c.indent, "%snetwork %s,", b.prefix(), t)
		}
	default:
		r.emit(o, c.indent, "%snetwork,", b.prefix())
		if dccp.Action == policy.ActionAudit && b == blanketPermit {
			// Reports every inet socket; attribution drops the reports Decide does not alert on.
			r.emit(verdictOrigin(dccp, c), c.indent, "audit network inet,")
			r.emit(verdictOrigin(dccp, c), c.indent, "audit network inet6,")
		}
	}

	for _, cell := range netCells {
		var vs []rules.Verdict
		ruled := false
		for _, p := range cell.protocols {
			v := r.decideTTY(rules.Access{Op: policy.OpNetwork, Family: cell.family, SockType: cell.sockType, Protocol: p, Source: c.source})
			vs = append(vs, v)
			ruled = ruled || v.RuleID >= 0 && !v.Posture
		}
		w := worst(vs...)
		for _, p := range cell.unfolded {
			v := r.decideTTY(rules.Access{Op: policy.OpNetwork, Family: cell.family, SockType: cell.sockType, Protocol: p, Source: c.source})
			if v.Action == policy.ActionBlock && w.Action != policy.ActionBlock {
				r.warnVerdict(v, "network %s %s: %s sockets of type %s share the cell with %s, which is %s: AppArmor cannot block them without blocking all of it, so %s %s sockets are NOT blocked",
					cell.family, cell.sockType, p, cell.sockType, strings.Join(cell.protocols, ", "), describe(w), p, cell.sockType)
			}
		}
		if !ruled {
			continue // only the blanket decides
		}
		if w.Action == policy.ActionBlock {
			var differ []string
			for i, v := range vs {
				if v.Action != policy.ActionBlock {
					differ = append(differ, fmt.Sprintf("%s is %s", protoName(cell.protocols[i]), describe(v)))
				}
			}
			if len(differ) > 0 {
				r.warnVerdict(w, "network %s %s: AppArmor cannot tell protocols apart, %s blocks the cell while %s: every %s %s socket is denied",
					cell.family, cell.sockType, describe(w), strings.Join(differ, ", "), cell.family, cell.sockType)
			}
		}
		line := ""
		switch w.Action {
		case policy.ActionBlock:
			line = "audit deny network %s %s,"
		case policy.ActionAudit:
			line = "audit network %s %s,"
		case policy.ActionAllow:
			if b != blanketNone {
				continue // the blanket grants it
			}
			line = "network %s %s,"
		}
		r.emit(verdictOrigin(w, c), c.indent, line, cell.family, cell.sockType)
	}

	// Families without a cell of their own (netlink, bluetooth, ...): by type. A Block here
	// comes from a rule naming the type (or "all"), which blocks the listed families' cells of
	// that type too, so the family-wide deny never overrides a grant above. The family is left
	// unnamed so that an address-family rule (below) does not stand for every family.
	for _, t := range sockTypes {
		v := r.decideTTY(rules.Access{Op: policy.OpNetwork, SockType: t, Source: c.source})
		if v.Posture || v.RuleID < 0 {
			continue
		}
		switch {
		case v.Action == policy.ActionBlock && b != blanketNone:
			r.emit(verdictOrigin(v, c), c.indent, "audit deny network %s,", t)
		case v.Action == policy.ActionAudit:
			r.emit(verdictOrigin(v, c), c.indent, "audit network %s,", t)
		case v.Action == policy.ActionAllow && b == blanketNone:
			r.emit(verdictOrigin(v, c), c.indent, "network %s,", t)
		}
	}
	r.families(c, b)
}

// families renders the address-family rules (AF_RDS, normalised af_rds) of families without a
// cell of their own as AppArmor's family rules ("audit deny network rds,"). Families with cells
// (inet, inet6, unix, packet) need nothing here: Decide gives their cells the family's verdict.
func (r *renderer) families(c *ctx, b blanket) {
	done := map[string]bool{}
	for _, f := range cellFamilies {
		done[f] = true
	}
	rs := r.set.RulesFor(policy.OpNetwork)
	for i := range rs {
		rule := &rs[i]
		f, ok := policy.FamilyOfProtocol(rule.Value)
		if !ok || done[f] {
			continue
		}
		done[f] = true
		if !slices.Contains(parserFamilies, f) {
			r.warn(rule, "AppArmor's parser may not know the address family AF_%s: the rule is not enforced by AppArmor", strings.ToUpper(f))
			continue
		}
		v := r.decideTTY(rules.Access{Op: policy.OpNetwork, Family: f, Source: c.source})
		if v.Posture || v.RuleID < 0 {
			continue
		}
		switch {
		case v.Action == policy.ActionBlock:
			r.emit(verdictOrigin(v, c), c.indent, "audit deny network %s,", f)
		case v.Action == policy.ActionAudit:
			r.emit(verdictOrigin(v, c), c.indent, "audit network %s,", f)
		case v.Action == policy.ActionAllow && b == blanketNone:
			r.emit(verdictOrigin(v, c), c.indent, "network %s,", f)
		}
	}
}

// cellFamilies are the families netCells covers.
var cellFamilies = []string{"inet", "inet6", "unix", "packet"}

// parserFamilies are the address families apparmor_parser has known for years (its names come
// from the kernel headers it was built with); newer ones (kcm, qipcrtr, smc, xdp, mctp) would
// make an older parser refuse the whole profile, so their rules are reported, not rendered.
var parserFamilies = []string{"ax25", "ipx", "appletalk", "netrom", "bridge", "atmpvc", "x25",
	"rose", "netbeui", "security", "key", "netlink", "ash", "econet", "atmsvc", "rds", "sna",
	"irda", "pppox", "wanpipe", "llc", "ib", "mpls", "can", "tipc", "bluetooth", "iucv", "rxrpc",
	"isdn", "phonet", "ieee802154", "caif", "alg", "nfc", "vsock"}

// warnVerdict warns about the rule a verdict names, or about the posture.
func (r *renderer) warnVerdict(v rules.Verdict, format string, args ...any) {
	if v.RuleID >= 0 && v.RuleID < len(r.set.Rules) && !v.Posture {
		r.warn(&r.set.Rules[v.RuleID], format, args...)
		return
	}
	r.warn(nil, format, args...)
}
