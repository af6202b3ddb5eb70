package file

import (
	"os"
	"path/filepath"
	"time"
)

// Reload checks the zone's file every ReloadInterval and loads it again
// when its SOA serial changed ("reload the zone if the SOA version
// changes"). The file is opened by path each time, so a file changed in
// place, replaced by a rename or created late (a git checkout) is seen.
// With ReloadInterval 0 nothing is checked. It returns at once; Stop ends
// the checking.
func (z *Zone) Reload() {
	if z.ReloadInterval == 0 {
		close(z.done)
		return
	}
	go func() {
		defer close(z.done)
		tick := time.NewTicker(z.ReloadInterval)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				z.reloadOnce()
			case <-z.stop:
				return
			}
		}
	}()
}

// reloadOnce reads the file and swaps the zone's records when the SOA
// serial differs from the one loaded. It reports whether it did.
func (z *Zone) reloadOnce() bool {
	zFile := z.File()
	reader, err := os.Open(filepath.Clean(zFile))
	if err != nil {
		z.logger.Error("file: failed to open zone", "zone", z.origin, "file", zFile, "error", err)
		return false
	}
	defer reader.Close()
	serial := z.SOASerialIfDefined()
	zone, err := Parse(reader, z.origin, zFile, serial)
	if err != nil {
		if _, ok := err.(*serialError); !ok {
			z.logger.Error("file: parsing zone", "zone", z.origin, "error", err)
		}
		return false
	}
	nd := zone.data.Load()
	z.data.Store(nd)
	z.logger.Info("file: successfully reloaded zone", "zone", z.origin, "file", zFile, "serial", nd.SOA.Serial)
	return true
}

// Start begins the periodic reload once (CoreDNS's StartupOnce).
func (z *Zone) Start() { z.startupOnce.Do(z.Reload) }

// Stop ends the periodic reload and waits for it. Safe to call more than
// once, and before Start.
func (z *Zone) Stop() {
	z.stopOnce.Do(func() { close(z.stop) })
	z.startupOnce.Do(func() { close(z.done) }) // never started: nothing to wait for
	<-z.done
}
