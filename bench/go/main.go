// bench/go/main.go — Go 1.19's built-in map[uint64]uint64 under the same workloads as
// bench/hmap_bench.cpp, so that leakless::hmap can be compared with the design it ports.
//
// How it works: keys come from the same splitmix64 generator as the C++ harness (same seed, same
// stream), so both programs see identical keys in identical orders: the first N outputs are the
// present keys, the next N outputs are the miss keys (splitmix64 is a bijection of its counter, so
// the two sets are disjoint and duplicate-free). Shuffles use a second splitmix64 stream and the
// same Fisher-Yates with a multiply-high bound. Each timed workload is run in repetitions of at
// least -min-time of timed work; the median repetition is reported (one single run for N >= 5M).
// runtime.GC() runs before each repetition, untimed; garbage produced inside a repetition is
// collected inside it, which is the real cost of Go's allocation. Results go to stdout as TSV
// lines "impl<TAB>N<TAB>metric<TAB>value" (impl is always "go"); progress goes to stderr.
package main

import (
	"flag"
	"fmt"
	"math/bits"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	_ "unsafe" // for go:linkname
)

//go:linkname nanotime runtime.nanotime
func nanotime() int64

const (
	keySeed     = 0x1eaf1e55c0ffee01
	shuffleSeed = 0x5eed5eed12345678
	bigN        = 5_000_000
)

// splitmix64 is the generator shared with the C++ harness (Steele, Lea, Flood 2014).
type splitmix64 struct{ state uint64 }

func (s *splitmix64) next() uint64 {
	s.state += 0x9e3779b97f4a7c15
	z := s.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// makeKeys returns n present keys and n miss keys.
func makeKeys(n int) (hit, miss []uint64) {
	g := splitmix64{keySeed}
	hit = make([]uint64, n)
	miss = make([]uint64, n)
	for i := range hit {
		hit[i] = g.next()
	}
	for i := range miss {
		miss[i] = g.next()
	}
	return
}

// shuffled returns a Fisher-Yates shuffle of keys, seeded by shuffleSeed^salt.
func shuffled(keys []uint64, salt uint64) []uint64 {
	out := append([]uint64(nil), keys...)
	g := splitmix64{shuffleSeed ^ salt}
	for i := len(out) - 1; i > 0; i-- {
		j, _ := bits.Mul64(g.next(), uint64(i+1))
		out[i], out[j] = out[j], out[i]
	}
	return out
}

var (
	minTime  = flag.Duration("min-time", 200*time.Millisecond, "minimum timed work per repetition")
	reps     = flag.Int("reps", 3, "repetitions per measurement for N < 5M (median reported)")
	sizes    = flag.String("sizes", "1000,1000000,10000000", "N values for the timed workloads")
	grow     = flag.Int("grow", 10_000_000, "N for the longest-single-insert measurement (0: skip)")
	growRuns = flag.Int("grow-runs", 3, "runs of the longest-single-insert measurement")
	memN     = flag.String("mem-sizes", "1000000,10000000", "N values for bytes per entry")
	erase99  = flag.Int("erase99", 1_000_000, "N for the erase-99% memory measurement (0: skip)")
	sink     uint64
	failed   bool
	// mapSink makes the measured maps escape to the heap, as a long-lived map would.
	mapSink map[uint64]uint64
)

func emit(n int, metric string, value float64) {
	fmt.Printf("go\t%d\t%s\t%s\n", n, metric, strconv.FormatFloat(value, 'f', -1, 64))
}

func fail(n int, format string, args ...interface{}) {
	msg := fmt.Sprintf(format, args...)
	fmt.Printf("go\t%d\terror\t%s\n", n, msg)
	fmt.Fprintf(os.Stderr, "go N=%d ERROR: %s\n", n, msg)
	failed = true
}

// measure runs body (which returns timed nanoseconds and operation count) until minTime of timed
// work has accumulated, per repetition, and returns the median ns/op over the repetitions.
func measure(n int, body func() (int64, int)) float64 {
	r := *reps
	if n >= bigN {
		r = 1
	}
	results := make([]float64, 0, r)
	for i := 0; i < r; i++ {
		runtime.GC()
		var ns int64
		var ops int
		for ns < int64(*minTime) {
			t, o := body()
			ns += t
			ops += o
			if n >= bigN {
				break
			}
		}
		results = append(results, float64(ns)/float64(ops))
	}
	sort.Float64s(results)
	return results[len(results)/2]
}

func build(keys []uint64) map[uint64]uint64 {
	m := make(map[uint64]uint64)
	for i, k := range keys {
		m[k] = uint64(i)
	}
	return m
}

func timedWorkloads(n int) {
	hit, miss := makeKeys(n)
	hitOrder := shuffled(hit, 1)
	eraseOrder := shuffled(hit, 2)
	missOrder := shuffled(miss, 3)
	want := uint64(n) * uint64(n-1) / 2 // sum of the values 0..n-1

	// insert builds from make(map), insert_reserve from make(map, n): the same loop otherwise.
	for _, run := range []struct {
		metric string
		hint   int
	}{{"insert", 0}, {"insert_reserve", n}} {
		emit(n, run.metric, measure(n, func() (int64, int) {
			t0 := nanotime()
			m := make(map[uint64]uint64, run.hint)
			for i, k := range hit {
				m[k] = uint64(i)
			}
			t := nanotime() - t0
			if len(m) != n {
				fail(n, "%s: len %d, want %d", run.metric, len(m), n)
			}
			return t, n
		}))
	}

	m := build(hit)
	runtime.GC()
	emit(n, "hit", measure(n, func() (int64, int) {
		var sum uint64
		t0 := nanotime()
		for _, k := range hitOrder {
			if v, ok := m[k]; ok {
				sum += v
			}
		}
		t := nanotime() - t0
		if sum != want {
			fail(n, "hit: sum %d, want %d", sum, want)
		}
		sink += sum
		return t, n
	}))
	emit(n, "miss", measure(n, func() (int64, int) {
		var found uint64
		t0 := nanotime()
		for _, k := range missOrder {
			if _, ok := m[k]; ok {
				found++
			}
		}
		t := nanotime() - t0
		if found != 0 {
			fail(n, "miss: %d miss keys found", found)
		}
		sink += found
		return t, n
	}))
	emit(n, "iterate", measure(n, func() (int64, int) {
		var sum uint64
		count := 0
		t0 := nanotime()
		for _, v := range m {
			sum += v
			count++
		}
		t := nanotime() - t0
		if sum != want || count != n {
			fail(n, "iterate: sum %d count %d, want %d and %d", sum, count, want, n)
		}
		sink += sum
		return t, n
	}))
	m = nil

	emit(n, "erase", measure(n, func() (int64, int) {
		e := build(hit)
		t0 := nanotime()
		for _, k := range eraseOrder {
			delete(e, k)
		}
		t := nanotime() - t0
		if len(e) != 0 {
			fail(n, "erase: len %d after erasing all", len(e))
		}
		return t, n
	}))
}

type growRun struct{ max, p9999, p999, mean float64 }

func summarize(lat []int64, total int64) growRun {
	n := len(lat)
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	at := func(q float64) float64 { return float64(lat[int(float64(n)*q)]) }
	return growRun{float64(lat[n-1]), at(0.9999), at(0.999), float64(total) / float64(n)}
}

// pageFaultFloor times the first touch of each page of fresh memory (32 bytes for each of n
// entries), one by one: the slowest single page fault bounds the longest insert from below.
func pageFaultFloor(n int) {
	page := os.Getpagesize()
	size := n * 32 / page * page
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		fmt.Fprintln(os.Stderr, "page-fault floor: mmap:", err)
		os.Exit(1)
	}
	lat := make([]int64, size/page)
	start := nanotime()
	for i := range lat {
		t0 := nanotime()
		mem[i*page] = 1
		lat[i] = nanotime() - t0
	}
	faults := summarize(lat, nanotime()-start)
	syscall.Munmap(mem)
	emit(n, "grow_fault_max_ns", faults.max)
	emit(n, "grow_fault_p9999_ns", faults.p9999)
}

// longestInsert grows a map from empty to n entries, timing every insert on its own; repeated
// -grow-runs times (the median run is reported, and the worst maximum). The noise floor is the
// same loop with nothing between the two clock reads.
func longestInsert(n int) {
	hit, _ := makeKeys(n)
	lat := make([]int64, n)
	for i := range lat {
		lat[i] = 1
	}
	runtime.GC()
	start := nanotime()
	for i := range lat {
		t0 := nanotime()
		lat[i] = nanotime() - t0
	}
	floor := summarize(lat, nanotime()-start)
	emit(n, "grow_floor_max_ns", floor.max)
	emit(n, "grow_floor_p9999_ns", floor.p9999)
	pageFaultFloor(n)

	var runs []growRun
	for r := 0; r < *growRuns; r++ {
		runtime.GC()
		m := make(map[uint64]uint64)
		start := nanotime()
		for i, k := range hit {
			t0 := nanotime()
			m[k] = uint64(i)
			lat[i] = nanotime() - t0
		}
		total := nanotime() - start
		if len(m) != n {
			fail(n, "grow: len %d, want %d", len(m), n)
		}
		runs = append(runs, summarize(lat, total))
		runtime.KeepAlive(m)
	}
	median := func(get func(growRun) float64) float64 {
		v := make([]float64, 0, len(runs))
		for _, r := range runs {
			v = append(v, get(r))
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	worst := 0.0
	for _, r := range runs {
		if r.max > worst {
			worst = r.max
		}
	}
	emit(n, "grow_max_insert_ns", median(func(r growRun) float64 { return r.max }))
	emit(n, "grow_worst_max_insert_ns", worst)
	emit(n, "grow_p9999_insert_ns", median(func(r growRun) float64 { return r.p9999 }))
	emit(n, "grow_p999_insert_ns", median(func(r growRun) float64 { return r.p999 }))
	emit(n, "grow_total_ns_per_op", median(func(r growRun) float64 { return r.mean }))
}

func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func delta(after, before uint64) float64 {
	if after < before {
		return 0
	}
	return float64(after - before)
}

func bytesPerEntry(n int) {
	hit, _ := makeKeys(n)
	before := heapAlloc()
	mapSink = build(hit)
	after := heapAlloc()
	emit(n, "bytes_per_entry", delta(after, before)/float64(n))
	mapSink = nil
	runtime.KeepAlive(hit)
}

// erase99Memory erases 99% of n entries in random order and compares the heap held by the map
// with that of a fresh map holding only the survivors.
func erase99Memory(n int) {
	hit, miss := makeKeys(n)
	order := shuffled(hit, 4)
	survivors := n / 100
	doomed := order[:n-survivors]
	kept := order[n-survivors:]

	before := heapAlloc()
	mapSink = build(hit)
	m := mapSink
	emit(n, "erase99_full_bytes", delta(heapAlloc(), before))
	for _, k := range doomed {
		delete(m, k)
	}
	emit(n, "erase99_after_bytes", delta(heapAlloc(), before))
	if len(m) != survivors {
		fail(n, "erase99: len %d, want %d", len(m), survivors)
	}
	for _, k := range kept {
		if _, ok := m[k]; !ok {
			fail(n, "erase99: survivor %d missing", k)
			break
		}
	}
	// survivors-many insert+erase write pairs with fresh keys.
	for i := 0; i < survivors; i++ {
		m[miss[i]] = 1
		delete(m, miss[i])
	}
	emit(n, "erase99_pairs_bytes", delta(heapAlloc(), before))
	m = nil
	mapSink = nil

	before = heapAlloc()
	mapSink = build(kept)
	emit(n, "erase99_fresh_bytes", delta(heapAlloc(), before))
	mapSink = nil
	runtime.KeepAlive(hit)
	runtime.KeepAlive(miss)
	runtime.KeepAlive(order)
}

func parseSizes(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil || v <= 0 {
			fmt.Fprintf(os.Stderr, "bad size %q\n", f)
			os.Exit(2)
		}
		out = append(out, v)
	}
	return out
}

func main() {
	flag.Parse()
	fmt.Fprintf(os.Stderr, "go: %s GOMAXPROCS=%d\n", runtime.Version(), runtime.GOMAXPROCS(0))
	// Lines starting with '#' describe the build; bench/compare.py prints them with the results.
	fmt.Printf("#meta\tgo\t%s\n", runtime.Version())
	fmt.Printf("#meta\tgomaxprocs\t%d\n", runtime.GOMAXPROCS(0))
	fmt.Printf("#meta\tgogc\t%s\n", os.Getenv("GOGC"))
	for _, n := range parseSizes(*sizes) {
		fmt.Fprintf(os.Stderr, "go: timed workloads N=%d\n", n)
		timedWorkloads(n)
	}
	if *grow > 0 {
		fmt.Fprintf(os.Stderr, "go: longest insert N=%d\n", *grow)
		longestInsert(*grow)
	}
	for _, n := range parseSizes(*memN) {
		fmt.Fprintf(os.Stderr, "go: bytes per entry N=%d\n", n)
		bytesPerEntry(n)
	}
	if *erase99 > 0 {
		fmt.Fprintf(os.Stderr, "go: erase 99%% N=%d\n", *erase99)
		erase99Memory(*erase99)
	}
	fmt.Fprintf(os.Stderr, "go: done (sink %d)\n", sink)
	if failed {
		os.Exit(1)
	}
}
