// tests/cli/go_leak/main.go — a Go program that leaks at two rates and writes a series of heap
// profiles with Go's own runtime/pprof, so the CLI tests check that `leakless top` and
// `leakless leaks` read profiles written by Go programs.
//
// How it works: every round allocates in leakFast (64 KiB, kept), every fourth round in leakSlow
// (16 KiB, kept) and in churn (freed at once); after each batch of rounds it runs the GC, so the
// heap profile's in-use values are current, and writes DIR/go.NN.heap.pb.gz. The sampling rate is
// 4 KiB so that a short run still has many samples. Usage: go run . DIR
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"
)

var fast, slow [][]byte
var sink []byte

//go:noinline
func leakFast() { fast = append(fast, make([]byte, 64<<10)) }

//go:noinline
func leakSlow() { slow = append(slow, make([]byte, 16<<10)) }

//go:noinline
func churn() { sink = make([]byte, 128<<10) }

func main() {
	runtime.MemProfileRate = 4096
	dir := os.Args[1]
	for i := 0; i < 12; i++ {
		for j := 0; j < 20; j++ {
			leakFast()
			if j%4 == 0 {
				leakSlow()
			}
			churn()
		}
		runtime.GC()
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("go.%02d.heap.pb.gz", i)))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		f.Close()
		time.Sleep(100 * time.Millisecond)
	}
}
