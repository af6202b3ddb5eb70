package loadbalance

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

var errOpen = errors.New("weight file open error")

// weightedRR is the "weighted" policy: per domain name, weights (1-255)
// of addresses read from WEIGHTFILE and re-read every reload.
type weightedRR struct {
	fileName string
	reload   time.Duration
	sum      [sha256.Size]byte
	domains  map[string]weights
	randUint func(limit uint) uint
	log      *slog.Logger
	mutex    sync.Mutex

	stop    chan struct{}
	done    chan struct{}
	started atomic.Bool // the reload loop runs
}

type weights []*weightItem

type weightItem struct {
	address net.IP
	value   uint8
}

func newWeightedRR(fileName string, reload time.Duration, logger *slog.Logger) *weightedRR {
	return &weightedRR{
		fileName: fileName,
		reload:   reload,
		randUint: func(limit uint) uint { return uint(rand.IntN(int(limit))) },
		log:      logger,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// weightedShuffle applies the policy to A, AAAA and SRV queries.
func weightedShuffle(res *dns.Msg, w *weightedRR) *dns.Msg {
	switch res.Question[0].Qtype {
	case dns.TypeA, dns.TypeAAAA, dns.TypeSRV:
		res.Answer = w.weightedRoundRobin(res.Answer)
		res.Extra = w.weightedRoundRobin(res.Extra)
	}
	return res
}

// onStartup reads the weight file (a missing file only warns when it
// will be re-read) and starts the reload loop.
func (w *weightedRR) onStartup() error {
	err := w.updateWeights()
	if errors.Is(err, errOpen) && w.reload != 0 {
		w.log.Warn("failed to open weight file, will try again", "file", w.fileName, "retry", w.reload)
	} else if err != nil {
		return err
	}
	w.periodicWeightUpdate()
	return nil
}

func (w *weightedRR) onShutdown() error {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	if w.started.Load() {
		<-w.done
	}
	return nil
}

// weightedRoundRobin moves the chosen address to the top of the
// addresses, as CoreDNS: CNAMEs, other records, addresses, MX.
func (w *weightedRR) weightedRoundRobin(in []dns.RR) []dns.RR {
	var cname, address, mx, rest []dns.RR
	for _, r := range in {
		switch r.Header().Rrtype {
		case dns.TypeCNAME:
			cname = append(cname, r)
		case dns.TypeA, dns.TypeAAAA:
			address = append(address, r)
		case dns.TypeMX:
			mx = append(mx, r)
		default:
			rest = append(rest, r)
		}
	}
	if len(address) == 0 {
		return in
	}
	w.setTopRecord(address)
	out := append(cname, rest...)
	out = append(out, address...)
	return append(out, mx...)
}

func (w *weightedRR) setTopRecord(address []dns.RR) {
	if itop := w.topAddressIndex(address); itop > 0 {
		address[0], address[itop] = address[itop], address[0]
	}
}

// topAddressIndex draws an address with probability weight/sum (weight 1
// for addresses missing from the file).
func (w *weightedRR) topAddressIndex(address []dns.RR) int {
	w.mutex.Lock()
	defer w.mutex.Unlock()
	type waddress struct {
		index  int
		weight uint8
	}
	var wsum uint
	weighted := make([]waddress, len(address))
	for i, ar := range address {
		wa := &weighted[i]
		wa.index = i
		wa.weight = 1
		var ip net.IP
		switch r := ar.(type) {
		case *dns.A:
			ip = r.A
		case *dns.AAAA:
			ip = r.AAAA
		}
		for _, wi := range w.domains[ar.Header().Name] {
			if wi.address.Equal(ip) {
				wa.weight = wi.value
				break
			}
		}
		wsum += uint(wa.weight)
	}
	sort.Slice(weighted, func(i, j int) bool { return weighted[i].weight > weighted[j].weight })
	v := w.randUint(wsum)
	var psum uint
	for _, wa := range weighted {
		psum += uint(wa.weight)
		if v < psum {
			return wa.index
		}
	}
	return -1
}

func (w *weightedRR) periodicWeightUpdate() {
	if w.reload == 0 {
		return
	}
	w.started.Store(true)
	go func() {
		defer close(w.done)
		ticker := time.NewTicker(w.reload)
		defer ticker.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-ticker.C:
				if err := w.updateWeights(); err != nil {
					w.log.Error("reading weight file", "file", w.fileName, "err", err)
				}
			}
		}
	}()
}

// updateWeights re-reads the weight file when its contents changed.
func (w *weightedRR) updateWeights() error {
	data, err := os.ReadFile(filepath.Clean(w.fileName))
	if err != nil {
		return fmt.Errorf("%w: %v", errOpen, err)
	}
	sum := sha256.Sum256(data)
	w.mutex.Lock()
	same := sum == w.sum
	w.mutex.Unlock()
	if same {
		return nil
	}
	domains, err := w.parseWeights(bufio.NewScanner(bytes.NewReader(data)))
	if err != nil {
		return err
	}
	w.mutex.Lock()
	w.sum = sum
	w.domains = domains
	w.mutex.Unlock()
	w.log.Info("loaded weight file", "file", w.fileName)
	return nil
}

// parseWeights reads "domain" lines followed by "IP WEIGHT" lines; #
// starts a comment line.
func (w *weightedRR) parseWeights(scanner *bufio.Scanner) (map[string]weights, error) {
	var dname string
	domains := map[string]weights{}
	line := 0
	for scanner.Scan() {
		line++
		next := strings.TrimSpace(scanner.Text())
		if next == "" || next[0] == '#' {
			continue
		}
		fields := strings.Fields(next)
		switch len(fields) {
		case 1:
			if net.ParseIP(fields[0]) != nil {
				return nil, fmt.Errorf("%s:%d: wrong domain name:%q (maybe a missing weight value?)", w.fileName, line, fields[0])
			}
			dname = dns.Fqdn(fields[0])
			if _, ok := domains[dname]; !ok {
				domains[dname] = weights{}
			}
		case 2:
			ip := net.ParseIP(fields[0])
			if ip == nil {
				return nil, fmt.Errorf("%s:%d: wrong IP address:%q", w.fileName, line, fields[0])
			}
			weight, err := strconv.ParseUint(fields[1], 10, 8)
			if err != nil || weight == 0 {
				return nil, fmt.Errorf("%s:%d: wrong weight value:%q", w.fileName, line, fields[1])
			}
			if dname == "" {
				return nil, fmt.Errorf("%s:%d: missing domain name", w.fileName, line)
			}
			domains[dname] = append(domains[dname], &weightItem{address: ip, value: uint8(weight)})
		default:
			return nil, fmt.Errorf("%s:%d: could not parse weight line:%q", w.fileName, line, next)
		}
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("weight file %s parsing error: %s", w.fileName, err)
	}
	return domains, nil
}
