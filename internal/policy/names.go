package policy

import (
	"slices"
	"strconv"
	"strings"
	"sync"
)

// protocols are the network.matchProtocols values KubeArmor's CRD lists, in lower case.
var protocols = []string{"tcp", "udp", "icmp", "icmpv6", "raw", "sctp", "stream", "dgram", "rdm",
	"seqpacket", "dccp", "packet", "all"}

// familyPrefix starts a matchProtocols value that names an address family (AF_RDS), which
// KubeArmor's daemon matches against the socket's domain (its feeder reads "domain=AF_RDS" and
// compares "af_rds"; e2e test ksp-ubuntu-1-block-net-af-rds). Normalised rules spell it "af_rds".
const familyPrefix = "af_"

// addressFamilies are Linux's address families (linux/socket.h), by their names without AF_,
// in lower case, as AppArmor and rules.Access spell them. AF_LOCAL and AF_ROUTE are aliases of
// unix and netlink.
var addressFamilies = map[string]int{
	"unix": 1, "inet": 2, "ax25": 3, "ipx": 4, "appletalk": 5, "netrom": 6, "bridge": 7,
	"atmpvc": 8, "x25": 9, "inet6": 10, "rose": 11, "decnet": 12, "netbeui": 13, "security": 14,
	"key": 15, "netlink": 16, "packet": 17, "ash": 18, "econet": 19, "atmsvc": 20, "rds": 21,
	"sna": 22, "irda": 23, "pppox": 24, "wanpipe": 25, "llc": 26, "ib": 27, "mpls": 28, "can": 29,
	"tipc": 30, "bluetooth": 31, "iucv": 32, "rxrpc": 33, "isdn": 34, "phonet": 35,
	"ieee802154": 36, "caif": 37, "alg": 38, "nfc": 39, "vsock": 40, "kcm": 41, "qipcrtr": 42,
	"smc": 43, "xdp": 44, "mctp": 45,
}

var familyAliases = map[string]string{"local": "unix", "route": "netlink", "file": "unix"}

// AddressFamily returns the kernel's number of a family named as rules.Access names it (rds).
func AddressFamily(name string) (int, bool) {
	n, ok := addressFamilies[name]
	return n, ok
}

// AddressFamilyName names a family number as rules.Access does (rds), or gives the number.
func AddressFamilyName(n int) string {
	if name, ok := familiesByNumber()[n]; ok {
		return name
	}
	return strconv.Itoa(n)
}

var familiesByNumber = sync.OnceValue(func() map[int]string {
	m := make(map[int]string, len(addressFamilies))
	for name, n := range addressFamilies {
		m[n] = name
	}
	return m
})

// FamilyOfProtocol returns the family a normalised protocol value names ("rds" for "af_rds").
func FamilyOfProtocol(v string) (string, bool) {
	f, ok := strings.CutPrefix(v, familyPrefix)
	return f, ok
}

// canonicalProtocol reads one matchProtocols value: a CRD name in either case (tcp, TCP) or an
// address family (AF_RDS, af_rds, AF_LOCAL), and returns it as normalised rules spell it.
func canonicalProtocol(p string) (string, bool) {
	l := strings.ToLower(p)
	if slices.Contains(protocols, l) {
		return l, true
	}
	f, ok := strings.CutPrefix(l, familyPrefix)
	if !ok || !isASCII(p) {
		// Families are ASCII in either case (the CRD's pattern spells each letter [aA]).
		return "", false
	}
	if a, ok := familyAliases[f]; ok {
		f = a
	}
	if _, ok := addressFamilies[f]; !ok {
		return "", false
	}
	return familyPrefix + f, true
}

// familyList names the families for error messages.
func familyList() string {
	names := sortedKeys(addressFamilies)
	for i, n := range names {
		names[i] = "AF_" + strings.ToUpper(n)
	}
	return strings.Join(names, ", ")
}

// capabilityNumbers holds all of Linux's capabilities (linux/capability.h), not only the 34 that
// KubeArmor's CRD lists: a policy about perfmon or bpf is as meaningful as one about sys_admin.
var capabilityNumbers = map[string]int{
	"chown": 0, "dac_override": 1, "dac_read_search": 2, "fowner": 3, "fsetid": 4, "kill": 5,
	"setgid": 6, "setuid": 7, "setpcap": 8, "linux_immutable": 9, "net_bind_service": 10,
	"net_broadcast": 11, "net_admin": 12, "net_raw": 13, "ipc_lock": 14, "ipc_owner": 15,
	"sys_module": 16, "sys_rawio": 17, "sys_chroot": 18, "sys_ptrace": 19, "sys_pacct": 20,
	"sys_admin": 21, "sys_boot": 22, "sys_nice": 23, "sys_resource": 24, "sys_time": 25,
	"sys_tty_config": 26, "mknod": 27, "lease": 28, "audit_write": 29, "audit_control": 30,
	"setfcap": 31, "mac_override": 32, "mac_admin": 33, "syslog": 34, "wake_alarm": 35,
	"block_suspend": 36, "audit_read": 37, "perfmon": 38, "bpf": 39, "checkpoint_restore": 40,
}

// CapabilityNumber returns the kernel's number for a normalised capability name (net_raw).
func CapabilityNumber(name string) (int, bool) {
	n, ok := capabilityNumbers[name]
	return n, ok
}

// CapabilityName returns the normalised name of a capability number, or cap_N for a number
// newer than this table.
func CapabilityName(n int) string {
	if name, ok := capabilitiesByNumber()[n]; ok {
		return name
	}
	return "cap_" + strconv.Itoa(n)
}

var capabilitiesByNumber = sync.OnceValue(func() map[int]string {
	m := make(map[int]string, len(capabilityNumbers))
	for name, n := range capabilityNumbers {
		m[n] = name
	}
	return m
})

// SyscallNumber returns the x86_64 number of a system call name.
func SyscallNumber(name string) (int, bool) {
	n, ok := syscallNumbers[name]
	return n, ok
}

// SyscallName returns the name of an x86_64 system call number.
func SyscallName(nr int) (string, bool) {
	name, ok := syscallsByNumber()[nr]
	return name, ok
}

var syscallsByNumber = sync.OnceValue(func() map[int]string {
	m := make(map[int]string, len(syscallNumbers))
	for name, nr := range syscallNumbers {
		m[nr] = name
	}
	return m
})

func capabilityList() string {
	names := make([]string, 0, len(capabilityNumbers))
	for n := range capabilityNumbers {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return capabilityNumbers[a] - capabilityNumbers[b] })
	return strings.Join(names, ", ")
}

// canonicalCapability maps CAP_NET_RAW, cap_net_raw, NET_RAW and net_raw to net_raw.
func canonicalCapability(s string) (string, bool) {
	c := strings.ToLower(s)
	c = strings.TrimPrefix(c, "cap_")
	_, ok := capabilityNumbers[c]
	return c, ok
}

// Presets KubeArmor defines, in its spelling.
var presetNames = []string{"protectEnv", "filelessExec", "exec", "protectProc", "anonymousMapExec"}

// usbClasses are the class names KubeArmor's USB device handler accepts, with their codes
// (usb.org's defined class codes; KubeArmor getting-started/usb_device_handler.md).
var usbClasses = []struct {
	name string
	code int
}{
	{"AUDIO", 0x01}, {"COMMUNICATION-CDC", 0x02}, {"HID", 0x03}, {"PHYSICAL", 0x05},
	{"IMAGE", 0x06}, {"PRINTER", 0x07}, {"MASS-STORAGE", 0x08}, {"HUB", 0x09},
	{"CDC-DATA", 0x0A}, {"SMART-CARD", 0x0B}, {"CONTENT-SECURITY", 0x0D}, {"VIDEO", 0x0E},
	{"PERSONAL-HEALTHCARE", 0x0F}, {"AUDIO/VIDEO", 0x10}, {"BILLBOARD", 0x11},
	{"TYPE-C-BRIDGE", 0x12}, {"BULK-DISPLAY", 0x13}, {"MCTP", 0x14}, {"I3C", 0x3C},
	{"DIAGNOSTIC", 0xDC}, {"WIRELESS-CONTROLLER", 0xE0}, {"MISCELLANEOUS", 0xEF},
	{"APPLICATION-SPECIFIC", 0xFE}, {"VENDOR-SPECIFIC", 0xFF},
}

// canonicalUSBClass accepts a class name in any case or its number (decimal, or hex with 0x as
// in KubeArmor's own examples) and returns the upper-case name.
func canonicalUSBClass(s string) (string, bool) {
	u := strings.ToUpper(strings.TrimSpace(s))
	code := -1
	if n, err := strconv.ParseInt(u, 0, 32); err == nil {
		code = int(n)
	} else if strings.HasPrefix(u, "0X") {
		if n, err := strconv.ParseInt(u[2:], 16, 32); err == nil {
			code = int(n)
		}
	}
	for _, c := range usbClasses {
		if c.name == u || c.code == code {
			return c.name, true
		}
	}
	return "", false
}

func usbClassList() string {
	names := make([]string, len(usbClasses))
	for i, c := range usbClasses {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

// suggest returns the closest of names to s when it is a likely typo (edit distance at most 2).
func suggest(s string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(s, n, bestD); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is Levenshtein's distance, giving up (returning limit) once it reaches limit.
func editDistance(a, b string, limit int) int {
	if abs(len(a)-len(b)) >= limit {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= limit {
			return limit
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
