package main

import (
	"strings"
	"testing"
)

const (
	config     = `{"config":{"go_version":"go1.26.8","db":"file:///db","db_last_modified":"2026-11-05T00:00:00Z"}}`
	osvCrypto  = `{"osv":{"id":"GO-2026-5932","summary":"openpgp is unmaintained"}}`
	modCrypto  = `{"finding":{"osv":"GO-2026-5932","fixed_version":"v0.59.0","trace":[{"module":"golang.org/x/crypto","version":"v0.58.0"}]}}`
	osvHTTP    = `{"osv":{"id":"GO-2026-6603","summary":"HTTP/2 memory exhaustion"}}`
	stdImport  = `{"finding":{"osv":"GO-2026-6603","fixed_version":"v1.26.9","trace":[{"module":"stdlib","version":"v1.26.8","package":"net/http"}]}}`
	stdCalled  = `{"finding":{"osv":"GO-2026-6603","fixed_version":"v1.26.9","trace":[{"module":"stdlib","version":"v1.26.8","package":"net/http","function":"Serve"}]}}`
	cleanInput = config
)

func TestReport(t *testing.T) {
	for _, tc := range []struct {
		name        string
		in          string
		stdlibFails bool
		wantOK      bool
		want        []string
	}{
		{"nothing found", cleanInput, false, true, []string{"ok: no known vulnerability"}},
		{"a required module", config + osvCrypto + modCrypto, false, false, []string{"golang.org/x/crypto", "required, not imported", "FAIL: 1"}},
		{"the standard library, called", config + osvHTTP + stdImport + stdCalled, false, true, []string{"CALLED", "WARNING: 1", "fixed in v1.26.9"}},
		{"the standard library, strict", config + osvHTTP + stdCalled, true, false, []string{"FAIL: 1 known vulnerabilities in the Go standard library"}},
	} {
		var out strings.Builder
		ok, err := report(strings.NewReader(tc.in), &out, tc.stdlibFails)
		if err != nil || ok != tc.wantOK {
			t.Errorf("%s: report = %v, %v; want %v\n%s", tc.name, ok, err, tc.wantOK, out.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: output lacks %q:\n%s", tc.name, w, out.String())
			}
		}
		if strings.Count(out.String(), "GO-2026-6603") > 1 {
			t.Errorf("%s: one vulnerability printed twice:\n%s", tc.name, out.String())
		}
	}
	if _, err := report(strings.NewReader("{not json"), &strings.Builder{}, false); err == nil {
		t.Error("report of garbage: no error")
	}
}
