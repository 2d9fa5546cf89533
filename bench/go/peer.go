// The Go peer of `npm run bench -- vs-go`: the seed's pipelines, written the plain Go way with the
// standard library only. It reads an events file, groups records into tumbling one-minute windows
// keyed by (country, event_type), counts them and sums `amount` exactly (integer cents), and prints
// one JSON line: the number of windows, a checksum of the results, its CPU time and its peak RSS.
//
// Modes:
//
//	csv            encoding/csv, one goroutine
//	csv-pool       encoding/csv read by one goroutine, rows sent in batches to -workers goroutines
//	               by key hash, each aggregating its keys; their maps merged at the end
//	jsonl-decoder  json.Decoder over the whole stream, one struct per record
//	jsonl-unmarshal bufio.Scanner lines, json.Unmarshal each into a struct
//
// The checksum is the SHA-256 (first 16 hex digits) of the sorted lines
// "country\tevent_type\twindowStartMs\tcount\tcents\n", one per window: bench/vs-go.ts computes
// the same from Sluice's JSONL output.
//
// Built by the bench (`go build -o … bench/go/peer.go`); no module, no dependency.
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

const windowMs = 60_000

type winKey struct {
	country   string
	eventType string
	start     int64
}

type agg struct {
	count int64
	cents int64
}

// cents parses a decimal string with at most two fraction digits ("-12.3" → -1230).
func cents(s string) int64 {
	neg := false
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	var v int64
	frac := -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			frac = 0
			continue
		}
		if c < '0' || c > '9' {
			fail("bad amount %q", s)
		}
		v = v*10 + int64(c-'0')
		if frac >= 0 {
			frac++
		}
	}
	switch {
	case frac <= 0:
		v *= 100
	case frac == 1:
		v *= 10
	case frac > 2:
		fail("amount %q has more than two decimals", s)
	}
	if neg {
		return -v
	}
	return v
}

func windowStart(ts string) int64 {
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		fail("bad timestamp %q: %v", ts, err)
	}
	ms := t.UnixMilli()
	start := ms - ms%windowMs
	if ms < 0 && ms%windowMs != 0 {
		start -= windowMs
	}
	return start
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "peer: "+format+"\n", args...)
	os.Exit(1)
}

// columns finds the indexes of the named columns in a CSV header.
func columns(header []string, names ...string) []int {
	idx := make([]int, len(names))
	for i, n := range names {
		idx[i] = -1
		for j, h := range header {
			if h == n {
				idx[i] = j
			}
		}
		if idx[i] < 0 {
			fail("no column %q in the header", n)
		}
	}
	return idx
}

// eachCSVRow calls fn with the ts, country, event_type and amount of every row of f.
func eachCSVRow(f io.Reader, fn func(ts, country, eventType, amount string)) {
	r := csv.NewReader(bufio.NewReaderSize(f, 256<<10))
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		fail("reading the header: %v", err)
	}
	c := columns(header, "ts", "country", "event_type", "amount")
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return
		}
		if err != nil {
			fail("reading CSV: %v", err)
		}
		fn(rec[c[0]], rec[c[1]], rec[c[2]], rec[c[3]])
	}
}

func runCSV(f io.Reader) map[winKey]*agg {
	out := make(map[winKey]*agg)
	eachCSVRow(f, func(ts, country, eventType, amount string) {
		addEvent(out, ts, country, eventType, amount)
	})
	return out
}

// addEvent counts one event into its window.
func addEvent(out map[winKey]*agg, ts, country, eventType, amount string) {
	k := winKey{country, eventType, windowStart(ts)}
	a := out[k]
	if a == nil {
		a = &agg{}
		out[k] = a
	}
	a.count++
	a.cents += cents(amount)
}

type row struct {
	ts, country, eventType, amount string
}

func runCSVPool(f io.Reader, workers int) map[winKey]*agg {
	const batch = 1024
	chans := make([]chan []row, workers)
	results := make([]map[winKey]*agg, workers)
	var wg sync.WaitGroup
	for w := range workers {
		chans[w] = make(chan []row, 4)
		results[w] = make(map[winKey]*agg)
		wg.Add(1)
		go func(in <-chan []row, out map[winKey]*agg) {
			defer wg.Done()
			for rows := range in {
				for _, x := range rows {
					addEvent(out, x.ts, x.country, x.eventType, x.amount)
				}
			}
		}(chans[w], results[w])
	}
	pending := make([][]row, workers)
	h := fnv.New32a()
	eachCSVRow(f, func(ts, country, eventType, amount string) {
		x := row{ts, country, eventType, amount}
		h.Reset()
		h.Write([]byte(x.country))
		h.Write([]byte{0})
		h.Write([]byte(x.eventType))
		w := int(h.Sum32() % uint32(workers))
		pending[w] = append(pending[w], x)
		if len(pending[w]) == batch {
			chans[w] <- pending[w]
			pending[w] = make([]row, 0, batch)
		}
	})
	for w := range workers {
		if len(pending[w]) > 0 {
			chans[w] <- pending[w]
		}
		close(chans[w])
	}
	wg.Wait()
	out := results[0]
	for _, m := range results[1:] {
		for k, a := range m {
			if b := out[k]; b != nil {
				b.count += a.count
				b.cents += a.cents
			} else {
				out[k] = a
			}
		}
	}
	return out
}

type event struct {
	Ts        string `json:"ts"`
	Country   string `json:"country"`
	EventType string `json:"event_type"`
	Amount    string `json:"amount"`
}

func add(out map[winKey]*agg, e *event) {
	addEvent(out, e.Ts, e.Country, e.EventType, e.Amount)
}

func runJSONDecoder(f io.Reader) map[winKey]*agg {
	d := json.NewDecoder(bufio.NewReaderSize(f, 256<<10))
	out := make(map[winKey]*agg)
	for {
		var e event
		if err := d.Decode(&e); err == io.EOF {
			break
		} else if err != nil {
			fail("decoding JSON: %v", err)
		}
		add(out, &e)
	}
	return out
}

func runJSONUnmarshal(f io.Reader) map[winKey]*agg {
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 256<<10), 16<<20)
	out := make(map[winKey]*agg)
	for s.Scan() {
		line := s.Bytes()
		if len(line) == 0 {
			continue
		}
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			fail("decoding JSON: %v", err)
		}
		add(out, &e)
	}
	if err := s.Err(); err != nil {
		fail("reading: %v", err)
	}
	return out
}

func checksum(m map[winKey]*agg) string {
	lines := make([]string, 0, len(m))
	for k, a := range m {
		lines = append(lines, fmt.Sprintf("%s\t%s\t%d\t%d\t%d\n", k.country, k.eventType, k.start, a.count, a.cents))
	}
	sort.Strings(lines)
	sum := sha256.Sum256([]byte(strings.Join(lines, "")))
	return hex.EncodeToString(sum[:8])
}

// peakRSSKiB is VmHWM from /proc/self/status (the process's own high-water mark).
func peakRSSKiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			var n int64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(l, "VmHWM:")), "%d", &n)
			return n
		}
	}
	return -1
}

func main() {
	mode := flag.String("mode", "csv", "csv | csv-pool | jsonl-decoder | jsonl-unmarshal")
	workers := flag.Int("workers", 2, "worker goroutines of csv-pool")
	flag.Parse()
	if flag.NArg() != 1 {
		fail("usage: peer -mode M [-workers N] FILE")
	}
	f, err := os.Open(flag.Arg(0))
	if err != nil {
		fail("%v", err)
	}
	defer f.Close()
	var m map[winKey]*agg
	switch *mode {
	case "csv":
		m = runCSV(f)
	case "csv-pool":
		m = runCSVPool(f, *workers)
	case "jsonl-decoder":
		m = runJSONDecoder(f)
	case "jsonl-unmarshal":
		m = runJSONUnmarshal(f)
	default:
		fail("unknown mode %q", *mode)
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpuMs := float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e6
	fmt.Printf("{\"windows\":%d,\"checksum\":%q,\"cpuMs\":%.1f,\"hwmKiB\":%d}\n", len(m), checksum(m), cpuMs, peakRSSKiB())
}
