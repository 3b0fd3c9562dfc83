package delivery

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
)

// ErrRefusedAddress is returned, wrapped, for a connection to an address
// that the address policy does not allow. No packet is sent to it.
var ErrRefusedAddress = errors.New("address rejected by the delivery address policy")

// cgnat is the shared address space of RFC 6598, private in all but name.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// AddressPolicy decides which resolved addresses delivery may connect to. It
// is checked when connecting, after name resolution, so neither DNS answers
// nor redirects can lead around it.
type AddressPolicy struct {
	// BlockPrivate also refuses loopback and private addresses. Off by
	// default because receivers often run on the same host or network.
	BlockPrivate bool
}

// Check returns an error wrapping ErrRefusedAddress if ip may not be
// connected to. An IPv4-mapped IPv6 address is judged as the IPv4 address it
// holds.
func (p AddressPolicy) Check(ip netip.Addr) error {
	ip = ip.Unmap()
	refuse := func(kind string) error {
		return fmt.Errorf("%s is %s: %w", ip, kind, ErrRefusedAddress)
	}

	switch {
	case !ip.IsValid():
		return refuse("not a valid address")
	case ip.IsUnspecified():
		return refuse("unspecified")
	case ip.IsLinkLocalUnicast():
		return refuse("link-local, where cloud metadata services listen")
	case ip.IsMulticast():
		return refuse("multicast")
	case ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return refuse("the broadcast address")
	}

	if !p.BlockPrivate {
		return nil
	}
	switch {
	case ip.IsLoopback():
		return refuse("loopback and --block-private-targets is set")
	case ip.IsPrivate() || cgnat.Contains(ip):
		return refuse("private and --block-private-targets is set")
	}
	return nil
}

// control is a net.Dialer Control function: it runs after name resolution,
// before the connect call, with the address about to be dialled.
func (p AddressPolicy) control(network, address string, _ syscall.RawConn) error {
	addrPort, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dial %s %s: %w", network, address, ErrRefusedAddress)
	}
	return p.Check(addrPort.Addr())
}
