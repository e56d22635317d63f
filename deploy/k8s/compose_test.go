package k8s

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// composeFile is the part of the Compose specification that compose.yaml uses, as its
// fields are named there; decoded strictly, a misspelt or unexpected key fails.
type composeFile struct {
	Name       string                    `json:"name"`
	XChartscan map[string]any            `json:"x-chartscan"`
	Services   map[string]composeService `json:"services"`
	Volumes    map[string]any            `json:"volumes"`
}

type composeService struct {
	Image           string            `json:"image"`
	User            string            `json:"user"`
	ReadOnly        bool              `json:"read_only"`
	Tmpfs           []string          `json:"tmpfs"`
	Restart         string            `json:"restart"`
	Volumes         []string          `json:"volumes"`
	Command         []string          `json:"command"`
	Environment     map[string]string `json:"environment"`
	Ports           []string          `json:"ports"`
	StopGracePeriod string            `json:"stop_grace_period"`
	Cpus            string            `json:"cpus"`
	Ulimits         map[string]struct {
		Soft int `json:"soft"`
		Hard int `json:"hard"`
	} `json:"ulimits"`
	DependsOn map[string]struct {
		Condition string `json:"condition"`
	} `json:"depends_on"`
	Healthcheck *struct {
		Test     []string `json:"test"`
		Interval string   `json:"interval"`
		Retries  int      `json:"retries"`
	} `json:"healthcheck"`
}

// interpolate fills ${VAR}, ${VAR:-default} and ${VAR:?message} as Compose does from a
// .env holding a stand-in for every secret.
func interpolate(s string) string {
	return regexp.MustCompile(`\$\{([A-Z0-9_]+)(?::([-?])([^}]*))?\}`).ReplaceAllStringFunc(s, func(m string) string {
		p := regexp.MustCompile(`\$\{([A-Z0-9_]+)(?::([-?])([^}]*))?\}`).FindStringSubmatch(m)
		if p[2] == "-" {
			return p[3]
		}
		if v, ok := secretStandIns[p[1]]; ok {
			return v
		}
		return "stand-in-" + strings.ToLower(p[1])
	})
}

func TestCompose(t *testing.T) {
	b, err := chartscan()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("../../compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f composeFile
	if err := yaml.UnmarshalStrict(src, &f); err != nil {
		t.Fatalf("compose.yaml does not decode strictly: %v", err)
	}
	for _, want := range []string{"redis", "postgres", "minio", "migrate", "serve", "worker"} {
		if _, ok := f.Services[want]; !ok {
			t.Errorf("compose.yaml: no service %s", want)
		}
	}
	shutdown := workerShutdown(t)
	for name, s := range f.Services {
		if !strings.Contains(s.Image, "chartscan") {
			continue // a store
		}
		where := "compose.yaml/" + name
		if s.Image != "${CHARTSCAN_IMAGE:-localhost/chartscan:dev}" {
			t.Errorf("%s: image %q, want the one deploy/image.sh builds unless CHARTSCAN_IMAGE says", where, s.Image)
		}
		if len(s.Command) == 0 || !b.commands[s.Command[0]] {
			t.Errorf("%s: command %q: want a chartscan command", where, s.Command)
		}
		if !s.ReadOnly || !slices.ContainsFunc(s.Tmpfs, func(m string) bool { return strings.HasPrefix(m, "/tmp") }) ||
			s.User == "" || strings.HasPrefix(s.User, "0") {
			t.Errorf("%s: want read_only, a tmpfs on /tmp and a user not root", where)
		}
		env := map[string]string{}
		for k, raw := range s.Environment {
			if !b.settings[k] {
				t.Errorf("%s: %s is not a setting of chartscan's (`chartscan config`)", where, k)
				continue
			}
			if slices.Contains(secretEnv, k) && !strings.Contains(raw, "${") {
				t.Errorf("%s: %s is written in compose.yaml: take it from .env (${…})", where, k)
			}
			env[k] = interpolate(raw)
		}
		if err := b.accepts(env); err != nil {
			t.Errorf("%s: chartscan refuses these settings: %v", where, err)
		}
		switch name {
		case "worker":
			if env["CHARTSCAN_WORKER_DATABASE_URL"] == "" || env["CHARTSCAN_AUDIT_KEY"] != "" || env["DATABASE_URL"] != "" {
				t.Errorf("%s: want the worker role's URL, and neither the audit key nor the owner's URL", where)
			}
			if env["CHARTSCAN_CONCURRENCY"] != interpolate(s.Cpus) {
				t.Errorf("%s: %s slots on %s CPUs: want one CPU per slot", where, env["CHARTSCAN_CONCURRENCY"], interpolate(s.Cpus))
			}
			if g, err := time.ParseDuration(s.StopGracePeriod); err != nil || g < shutdown+10*time.Second {
				t.Errorf("%s: stop_grace_period %q is not past the worker's shutdown timeout %v plus 10 s", where, s.StopGracePeriod, shutdown)
			}
		case "serve":
			if env["CHARTSCAN_TLS_CERT"] == "" || env["CHARTSCAN_SERVE_DATABASE_URL"] == "" || env["DATABASE_URL"] != "" {
				t.Errorf("%s: want HTTPS and serve's own role's URL", where)
			}
		}
	}
}
