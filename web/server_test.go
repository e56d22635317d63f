package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/go-cmp/cmp"
)

func newTestServer(t *testing.T) *Server {
	t.Helper()
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(OpenAPI())
	if err != nil {
		t.Fatalf("openapi.yaml does not parse: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI 3 document: %v", err)
	}
	return doc
}

// TestOpenAPIMatchesRoutes checks the contract both ways: every API route the server
// registers is in openapi.yaml, and every operation there is one the server serves.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	served := newTestServer(t).APIRoutes()
	slices.Sort(documented)
	slices.Sort(served)
	if diff := cmp.Diff(documented, served); diff != "" {
		t.Errorf("openapi.yaml (-) and the served API routes (+) differ:\n%s", diff)
	}
}

// TestDocumentedRoutesResolve sends a request shaped like each documented operation to
// the server's mux and checks it lands on that route, not on another or a 404.
func TestDocumentedRoutesResolve(t *testing.T) {
	doc := loadOpenAPI(t)
	s := newTestServer(t)
	sample := map[string]string{"{id}": "6f1c2d3e-0000-4000-8000-000000000001", "{doc}": "6f1c2d3e-0000-4000-8000-000000000002",
		"{page}": "3", "{mrn}": "123456789", "{version}": "1"}
	param := regexp.MustCompile(`\{[a-z]+\}`)
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			url := param.ReplaceAllStringFunc(path, func(p string) string { return sample[p] })
			req := httptest.NewRequest(method, url, nil)
			if _, pattern := s.mux.Handler(req); pattern != method+" "+path {
				t.Errorf("%s %s resolves to %q", method, url, pattern)
			}
		}
	}
}

func TestEveryRouteButHealthAndLoginNeedsAUser(t *testing.T) {
	s := newTestServer(t)
	for _, rt := range s.routes {
		public := rt.path == "/api/v1/health" || rt.path == "/login"
		if (rt.roles == nil) != public {
			t.Errorf("%s %s: roles %v", rt.method, rt.path, rt.roles)
		}
	}
	// Without a store, an unauthenticated request must be refused before any lookup.
	for _, c := range []struct{ method, path string }{{"GET", "/api/v1/batches"}, {"POST", "/api/v1/users"}, {"GET", "/api/v1/metrics"}} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("%s %s without a user: %d, want 401", c.method, c.path, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/review", nil))
	if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/login") {
		t.Errorf("GET /review without a user: %d to %q, want a redirect to /login", rec.Code, rec.Header().Get("Location"))
	}
}

func TestRoles(t *testing.T) {
	tests := []struct {
		role  string
		roles []string
		want  bool
	}{
		{RoleClerk, uploaders, true}, {RoleClerk, reviewers, false}, {RoleClerk, admins, false},
		{RoleReviewer, reviewers, true}, {RoleReviewer, uploaders, false}, {RoleReviewer, admins, false},
		{RoleAdmin, uploaders, true}, {RoleAdmin, reviewers, true}, {RoleAdmin, admins, true},
		{"", anyone, false}, {"root", anyone, false},
	}
	for _, tt := range tests {
		if got := allowed(tt.role, tt.roles); got != tt.want {
			t.Errorf("allowed(%q, %v) = %v, want %v", tt.role, tt.roles, got, tt.want)
		}
	}
}

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q is not a PHC argon2id string", h)
	}
	if !CheckPassword(h, "correct horse battery") {
		t.Error("the right password does not check")
	}
	for _, wrong := range []string{"correct horse batterY", "", "correct horse battery "} {
		if CheckPassword(h, wrong) {
			t.Errorf("wrong password %q checks", wrong)
		}
	}
	h2, _ := HashPassword("correct horse battery")
	if h == h2 {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	if _, err := HashPassword("short"); err == nil {
		t.Error("a 5-character password was accepted")
	}
	for _, bad := range []string{"", "$argon2id$", "$bcrypt$v=1$m=1,t=1,p=1$AA$AA", h[:len(h)-4]} {
		if CheckPassword(bad, "correct horse battery") {
			t.Errorf("malformed hash %q checks", bad)
		}
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{"/review": "/review", "": "/", "//evil.example": "/", "https://evil.example": "/", "/\\evil": "/"} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTemplatesParse(t *testing.T) {
	s := newTestServer(t)
	for _, name := range []string{"login", "error", "upload", "batches", "batch", "review", "page", "chart", "patients", "search", "users", "empi", "audit"} {
		if s.pages[name] == nil {
			t.Errorf("no template %q", name)
		}
	}
}
