// Command vulnreport reads `govulncheck -format json` on standard input and prints one
// line per known vulnerability: the module, where it is fixed and whether chartscan's
// code calls it. It exits 1 when a module of the build (go.sum's, not the Go toolchain's
// standard library) has one, called or not: a vulnerable module is bumped, not argued
// with. Standard-library findings belong to the Go installed on the machine; they are
// printed with the Go release that fixes them, and fail only with -stdlib=fail.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
)

type frame struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Package  string `json:"package"`
	Function string `json:"function"`
}

type message struct {
	Config *struct {
		GoVersion string `json:"go_version"`
		DB        string `json:"db"`
		Modified  string `json:"db_last_modified"`
	} `json:"config"`
	OSV *struct {
		ID      string `json:"id"`
		Summary string `json:"summary"`
	} `json:"osv"`
	Finding *struct {
		OSV   string  `json:"osv"`
		Fixed string  `json:"fixed_version"`
		Trace []frame `json:"trace"`
	} `json:"finding"`
}

// finding is one vulnerability in one module, at the deepest level govulncheck reached.
type finding struct {
	id, module, version, fixed, summary string
	level                               int // 0 the module is required, 1 a vulnerable package is imported, 2 a vulnerable function is called
}

func main() {
	stdlib := flag.String("stdlib", "warn", "what a standard-library finding does: warn or fail")
	flag.Parse()
	ok, err := report(os.Stdin, os.Stdout, *stdlib == "fail")
	if err != nil {
		fmt.Fprintln(os.Stderr, "vulnreport: reading govulncheck's output:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

// report prints the findings of govulncheck's JSON output r to out and reports whether
// the check passes.
func report(r io.Reader, out io.Writer, stdlibFails bool) (bool, error) {
	findings := map[string]*finding{}
	summaries := map[string]string{}
	dec := json.NewDecoder(r)
	for {
		var m message
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return false, err
		}
		switch {
		case m.Config != nil:
			fmt.Fprintf(out, "govulncheck: %s, database %s (modified %s)\n", m.Config.GoVersion, m.Config.DB, m.Config.Modified)
		case m.OSV != nil:
			summaries[m.OSV.ID] = m.OSV.Summary
		case m.Finding != nil && len(m.Finding.Trace) > 0:
			top := m.Finding.Trace[0]
			level := 0
			switch {
			case top.Function != "":
				level = 2
			case top.Package != "":
				level = 1
			}
			key := m.Finding.OSV + " " + top.Module
			f := findings[key]
			if f == nil {
				f = &finding{id: m.Finding.OSV, module: top.Module, version: top.Version, fixed: m.Finding.Fixed}
				findings[key] = f
			}
			f.level = max(f.level, level)
		}
	}
	var keys []string
	for k := range findings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	modules, std := 0, 0
	for _, k := range keys {
		f := findings[k]
		how := [...]string{"required, not imported", "imported, not called", "CALLED"}[f.level]
		fixed := f.fixed
		if fixed == "" {
			fixed = "no fix yet"
		}
		fmt.Fprintf(out, "%-15s %-28s %-14s fixed in %-16s %s — %s\n", f.id, f.module, f.version, fixed, how, summaries[f.id])
		if f.module == "stdlib" || f.module == "toolchain" {
			std++
		} else {
			modules++
		}
	}
	switch {
	case modules > 0:
		fmt.Fprintf(out, "FAIL: %d known vulnerabilities in modules of the build: bump them (go get MODULE@FIXED)\n", modules)
		return false, nil
	case std > 0 && stdlibFails:
		fmt.Fprintf(out, "FAIL: %d known vulnerabilities in the Go standard library: build with the Go release that fixes them\n", std)
		return false, nil
	case std > 0:
		fmt.Fprintf(out, "WARNING: %d known vulnerabilities in this Go's standard library, fixed in a later Go release: upgrade Go on every machine that builds chartscan\n", std)
	}
	fmt.Fprintln(out, "ok: no known vulnerability in the modules of the build")
	return true, nil
}
