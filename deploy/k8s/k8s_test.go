// Package k8s holds chartscan's Kubernetes manifests (kustomize: base/, components/,
// overlays/) and, in k8s_test.go, their offline check. It is a Go module of its own so
// that the Kubernetes, kustomize and KEDA modules it needs weigh on no other package.
package k8s

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// The overlays and the image each must run.
var overlays = map[string]string{
	"local":      "localhost/chartscan:dev", // what deploy/image.sh builds
	"production": "registry.example.org/chartscan/chartscan:1.0.0",
}

// Settings that hold a password or key: only ever from a Secret.
var secretEnv = []string{"REDIS_URL", "DATABASE_URL", "CHARTSCAN_SERVE_DATABASE_URL", "CHARTSCAN_WORKER_DATABASE_URL",
	"CHARTSCAN_CLI_DATABASE_URL", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY", "CHARTSCAN_AUDIT_KEY"}

// objects is one overlay's output, each object strictly decoded into its type.
type objects struct {
	deployments  map[string]*appsv1.Deployment
	services     map[string]*corev1.Service
	ingresses    []*networkingv1.Ingress
	jobs         map[string]*batchv1.Job
	configMaps   map[string]*corev1.ConfigMap
	pdbs         []*policyv1.PodDisruptionBudget
	netpols      map[string]*networkingv1.NetworkPolicy
	scaledObject []*kedav1alpha1.ScaledObject
	hpas         []*autoscalingv2.HorizontalPodAutoscaler
	accounts     map[string]*corev1.ServiceAccount
}

// build runs kustomize on dir in fs and decodes every object strictly: a field its
// k8s.io/api (or KEDA) type does not have fails, as does a kind this test does not know.
func build(t *testing.T, fs filesys.FileSystem, dir string) *objects {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	o := &objects{deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		jobs: map[string]*batchv1.Job{}, configMaps: map[string]*corev1.ConfigMap{},
		netpols: map[string]*networkingv1.NetworkPolicy{}, accounts: map[string]*corev1.ServiceAccount{}}
	for _, r := range m.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		gvk := r.GetGvk()
		kind := gvk.ApiVersion() + "/" + gvk.Kind
		decode := func(into any) {
			if err := yaml.UnmarshalStrict(b, into); err != nil {
				t.Errorf("%s: %s %s does not decode strictly: %v", dir, kind, r.GetName(), err)
			}
		}
		switch kind {
		case "apps/v1/Deployment":
			v := &appsv1.Deployment{}
			decode(v)
			o.deployments[v.Name] = v
		case "v1/Service":
			v := &corev1.Service{}
			decode(v)
			o.services[v.Name] = v
		case "networking.k8s.io/v1/Ingress":
			v := &networkingv1.Ingress{}
			decode(v)
			o.ingresses = append(o.ingresses, v)
		case "batch/v1/Job":
			v := &batchv1.Job{}
			decode(v)
			o.jobs[v.Name] = v
		case "v1/ConfigMap":
			v := &corev1.ConfigMap{}
			decode(v)
			o.configMaps[v.Name] = v
		case "policy/v1/PodDisruptionBudget":
			v := &policyv1.PodDisruptionBudget{}
			decode(v)
			o.pdbs = append(o.pdbs, v)
		case "networking.k8s.io/v1/NetworkPolicy":
			v := &networkingv1.NetworkPolicy{}
			decode(v)
			o.netpols[v.Name] = v
		case "keda.sh/v1alpha1/ScaledObject":
			v := &kedav1alpha1.ScaledObject{}
			decode(v)
			o.scaledObject = append(o.scaledObject, v)
		case "autoscaling/v2/HorizontalPodAutoscaler":
			v := &autoscalingv2.HorizontalPodAutoscaler{}
			decode(v)
			o.hpas = append(o.hpas, v)
		case "v1/ServiceAccount":
			v := &corev1.ServiceAccount{}
			decode(v)
			o.accounts[v.Name] = v
		case "v1/Secret":
			t.Errorf("%s: Secret %s is written in the manifests: Secrets are referenced, never inlined", dir, r.GetName())
		default:
			t.Errorf("%s: %s %s: a kind this test does not check", dir, kind, r.GetName())
		}
	}
	return o
}

// chartscan is what the binary says of itself: its settings (`chartscan config`) and
// commands (`chartscan --help`), built once from this checkout.
var chartscan = sync.OnceValues(func() (*binary, error) {
	dir, err := os.MkdirTemp("", "chartscan-k8s-test")
	if err != nil {
		return nil, err
	}
	b := &binary{path: filepath.Join(dir, "chartscan"), settings: map[string]bool{}, commands: map[string]bool{}}
	build := exec.Command("go", "build", "-o", b.path, "./cmd/chartscan")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./cmd/chartscan: %v\n%s", err, out)
	}
	out, err := exec.Command(b.path, "config").Output()
	if err != nil {
		return nil, fmt.Errorf("chartscan config: %v", err)
	}
	for _, m := range regexp.MustCompile(`(?m)^([A-Z][A-Z0-9_]+)\s`).FindAllStringSubmatch(string(out), -1) {
		b.settings[m[1]] = true
	}
	help, err := exec.Command(b.path, "--help").Output()
	if err != nil {
		return nil, fmt.Errorf("chartscan --help: %v", err)
	}
	_, cmds, _ := strings.Cut(string(help), "Available Commands:")
	cmds, _, _ = strings.Cut(cmds, "\n\n")
	for _, line := range strings.Split(strings.TrimSpace(cmds), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			b.commands[f[0]] = true
		}
	}
	if len(b.settings) < 20 || !b.commands["worker"] {
		return nil, fmt.Errorf("chartscan config listed %d settings, --help commands %v", len(b.settings), b.commands)
	}
	return b, nil
})

type binary struct {
	path     string
	settings map[string]bool
	commands map[string]bool
}

// accepts runs `chartscan config` with env alone: it exits 1 naming a bad value.
func (b *binary) accepts(env map[string]string) error {
	cmd := exec.Command(b.path, "config")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// stand-ins for what the Secrets hold, as a production deploy has them (TLS everywhere),
// so that `chartscan config` can judge the other values beside them.
var secretStandIns = map[string]string{
	"REDIS_URL":                     "rediss://:password@redis:6379/0",
	"DATABASE_URL":                  "postgres://chartscan:pw@postgresql:5432/chartscan?sslmode=verify-full&sslrootcert=/etc/chartscan/ca/ca.pem",
	"CHARTSCAN_SERVE_DATABASE_URL":  "postgres://chartscan_serve:pw@postgresql:5432/chartscan?sslmode=verify-full&sslrootcert=/etc/chartscan/ca/ca.pem",
	"CHARTSCAN_WORKER_DATABASE_URL": "postgres://chartscan_worker:pw@postgresql:5432/chartscan?sslmode=verify-full&sslrootcert=/etc/chartscan/ca/ca.pem",
	"CHARTSCAN_CLI_DATABASE_URL":    "postgres://chartscan_cli:pw@postgresql:5432/chartscan?sslmode=verify-full&sslrootcert=/etc/chartscan/ca/ca.pem",
	"MINIO_ACCESS_KEY":              "access",
	"MINIO_SECRET_KEY":              "secret-key-of-the-test",
	"CHARTSCAN_AUDIT_KEY":           "an-audit-key-of-at-least-32-characters",
}

// containerEnv is the environment a container starts with: its ConfigMaps' keys, then its
// env (Secrets as stand-ins, CPU requests as the downward API gives them). It fails on a
// setting chartscan does not have, on a secret setting not taken from a Secret, and on an
// envFrom that could hide names (a Secret's).
func containerEnv(t *testing.T, where string, o *objects, c corev1.Container, b *binary) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil || from.SecretRef != nil {
			t.Errorf("%s: envFrom other than a ConfigMap hides which settings it sets", where)
			continue
		}
		cm := o.configMaps[from.ConfigMapRef.Name]
		if cm == nil {
			t.Errorf("%s: envFrom ConfigMap %s is not in the build", where, from.ConfigMapRef.Name)
			continue
		}
		for k, v := range cm.Data {
			env[k] = v
		}
	}
	for _, e := range c.Env {
		secret := slices.Contains(secretEnv, e.Name)
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			if e.ValueFrom.SecretKeyRef.Name == "" || e.ValueFrom.SecretKeyRef.Key == "" {
				t.Errorf("%s: %s: a secretKeyRef without a name and key", where, e.Name)
			}
			env[e.Name] = secretStandIns[e.Name]
			if env[e.Name] == "" {
				env[e.Name] = "from-a-secret"
			}
		case secret:
			t.Errorf("%s: %s is a secret setting and must come from a Secret (secretKeyRef)", where, e.Name)
		case e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil:
			rf := e.ValueFrom.ResourceFieldRef
			q, ok := c.Resources.Requests[corev1.ResourceName(strings.TrimPrefix(rf.Resource, "requests."))]
			if !strings.HasPrefix(rf.Resource, "requests.") || !ok {
				t.Errorf("%s: %s from %s, which the container does not request", where, e.Name, rf.Resource)
				continue
			}
			env[e.Name] = strconv.FormatInt(q.Value(), 10) // divisor 1, rounded up
		case e.ValueFrom != nil:
			t.Errorf("%s: %s: a valueFrom this test does not know", where, e.Name)
		default:
			env[e.Name] = e.Value
		}
	}
	for k, v := range env {
		if !b.settings[k] {
			t.Errorf("%s: %s is not a setting of chartscan's (`chartscan config`)", where, k)
			delete(env, k)
		}
		if slices.Contains(secretEnv, k) && v != secretStandIns[k] {
			t.Errorf("%s: %s is written in a ConfigMap or the manifest: it must come from a Secret", where, k)
		}
	}
	if err := b.accepts(env); err != nil {
		t.Errorf("%s: chartscan refuses this container's settings: %v", where, err)
	}
	return env
}

// workerShutdown is the worker's asynq ShutdownTimeout, read from its source.
func workerShutdown(t *testing.T) time.Duration {
	src, err := os.ReadFile("../../cmd/chartscan/worker.go")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`ShutdownTimeout:\s*(\d+)\s*\*\s*time\.Second`).FindSubmatch(src)
	if m == nil {
		t.Fatal("cmd/chartscan/worker.go: no ShutdownTimeout: N * time.Second; update this test with the worker")
	}
	n, _ := strconv.Atoi(string(m[1]))
	return time.Duration(n) * time.Second
}

func podOf(t *testing.T, o *objects, deployment string) *corev1.PodTemplateSpec {
	t.Helper()
	d := o.deployments[deployment]
	if d == nil {
		t.Fatalf("no Deployment %s", deployment)
	}
	return &d.Spec.Template
}

// check is everything an overlay's output must hold.
func check(t *testing.T, name, image string, o *objects, b *binary) {
	// Every container: the overlay's image, a chartscan command, hardened, its settings
	// chartscan's own and accepted by it.
	type pod struct {
		where string
		spec  *corev1.PodSpec
		meta  map[string]string
	}
	var pods []pod
	for n, d := range o.deployments {
		pods = append(pods, pod{name + "/deployment/" + n, &d.Spec.Template.Spec, d.Spec.Template.Labels})
	}
	for n, j := range o.jobs {
		pods = append(pods, pod{name + "/job/" + n, &j.Spec.Template.Spec, j.Spec.Template.Labels})
	}
	envs := map[string]map[string]string{}
	for _, p := range pods {
		if p.spec.AutomountServiceAccountToken == nil || *p.spec.AutomountServiceAccountToken {
			t.Errorf("%s: mounts a service account token; chartscan needs no Kubernetes API", p.where)
		}
		if sc := p.spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
			t.Errorf("%s: not runAsNonRoot with a user of its own", p.where)
		}
		if len(p.spec.InitContainers) > 0 || len(p.spec.Containers) != 1 {
			t.Errorf("%s: want one container", p.where)
		}
		for _, c := range p.spec.Containers {
			where := p.where + "/" + c.Name
			if c.Image != image {
				t.Errorf("%s: image %q, want %q", where, c.Image, image)
			}
			if len(c.Command) > 0 || len(c.Args) == 0 || !b.commands[c.Args[0]] {
				t.Errorf("%s: args %q: want a chartscan command (the image's entrypoint) first", where, c.Args)
			}
			sc := c.SecurityContext
			if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil ||
				*sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
				t.Errorf("%s: want a read-only root filesystem, no privilege escalation, every capability dropped", where)
			}
			tmp := false
			for _, m := range c.VolumeMounts {
				for _, v := range p.spec.Volumes {
					if v.Name == m.Name && m.MountPath == "/tmp" && v.EmptyDir != nil {
						tmp = true
					}
				}
			}
			if !tmp {
				t.Errorf("%s: no emptyDir on /tmp, where chartscan writes", where)
			}
			envs[where] = containerEnv(t, where, o, c, b)
		}
	}

	// serve: HTTPS on the port its Service and Ingress name, its own database role.
	serve := podOf(t, o, "chartscan-serve")
	se := envs[name+"/deployment/chartscan-serve/serve"]
	if se["CHARTSCAN_TLS_CERT"] == "" || se["CHARTSCAN_TLS_KEY"] == "" || se["CHARTSCAN_SERVE_DATABASE_URL"] == "" ||
		se["CHARTSCAN_AUDIT_KEY"] == "" || se["DATABASE_URL"] != "" {
		t.Errorf("%s: serve wants its certificate, its own database role's URL (not the owner's) and the audit key", name)
	}
	_, port, _ := strings.Cut(se["CHARTSCAN_HTTP_ADDR"], ":")
	if c := serve.Spec.Containers[0]; len(c.Ports) == 0 || strconv.Itoa(int(c.Ports[0].ContainerPort)) != port {
		t.Errorf("%s: serve listens on %q, its container port is %v", name, se["CHARTSCAN_HTTP_ADDR"], c.Ports)
	}
	svc := o.services["chartscan-serve"]
	if svc == nil || !selects(svc.Spec.Selector, serve.Labels) {
		t.Fatalf("%s: Service chartscan-serve missing or selecting no serve pod", name)
	}
	if len(o.ingresses) != 1 {
		t.Fatalf("%s: want one Ingress, have %d", name, len(o.ingresses))
	}
	ing := o.ingresses[0]
	if len(ing.Spec.TLS) == 0 || ing.Spec.TLS[0].SecretName == "" || len(ing.Spec.TLS[0].Hosts) == 0 ||
		len(ing.Spec.Rules) == 0 || ing.Spec.Rules[0].Host != ing.Spec.TLS[0].Hosts[0] {
		t.Errorf("%s: the Ingress wants TLS (a secretName) for the host it routes", name)
	}
	for _, r := range ing.Spec.Rules {
		for _, p := range r.HTTP.Paths {
			if be := p.Backend.Service; be == nil || be.Name != svc.Name || be.Port.Name != svc.Spec.Ports[0].Name {
				t.Errorf("%s: the Ingress routes to %v, not to Service %s", name, p.Backend, svc.Name)
			}
		}
	}
	if ing.Annotations["nginx.ingress.kubernetes.io/backend-protocol"] != "HTTPS" {
		t.Errorf("%s: the Ingress must re-encrypt to serve (backend-protocol HTTPS)", name)
	}

	// The worker: one CPU per slot, a grace period past its shutdown timeout, its own
	// role, no audit key, no owner's URL.
	worker := podOf(t, o, "chartscan-worker")
	wc := worker.Spec.Containers[0]
	we := envs[name+"/deployment/chartscan-worker/worker"]
	cpu := wc.Resources.Requests[corev1.ResourceCPU]
	if lim := wc.Resources.Limits[corev1.ResourceCPU]; cpu.MilliValue()%1000 != 0 || cpu.Cmp(lim) != 0 ||
		we["CHARTSCAN_CONCURRENCY"] != strconv.FormatInt(cpu.Value(), 10) {
		t.Errorf("%s: worker: want whole CPUs requested = limit = CHARTSCAN_CONCURRENCY slots; cpu %s, limit %s, slots %q",
			name, cpu.String(), lim.String(), we["CHARTSCAN_CONCURRENCY"])
	}
	if mem := wc.Resources.Requests[corev1.ResourceMemory]; mem.Cmp(wc.Resources.Limits[corev1.ResourceMemory]) != 0 {
		t.Errorf("%s: worker: memory request and limit differ", name)
	}
	shutdown := workerShutdown(t)
	grace := time.Duration(0)
	if g := worker.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	if grace < shutdown+10*time.Second {
		t.Errorf("%s: worker: terminationGracePeriodSeconds %v is not past the worker's shutdown timeout %v plus 10 s", name, grace, shutdown)
	}
	if we["CHARTSCAN_WORKER_DATABASE_URL"] == "" || we["CHARTSCAN_AUDIT_KEY"] != "" || we["DATABASE_URL"] != "" {
		t.Errorf("%s: worker wants its own role's URL, and neither the audit key nor the owner's URL", name)
	}
	if _, mport, _ := strings.Cut(we["CHARTSCAN_WORKER_METRICS_ADDR"], ":"); len(wc.Ports) == 0 ||
		strconv.Itoa(int(wc.Ports[0].ContainerPort)) != mport || wc.LivenessProbe == nil {
		t.Errorf("%s: worker metrics on %q, container ports %v, liveness probe %v", name, we["CHARTSCAN_WORKER_METRICS_ADDR"], wc.Ports, wc.LivenessProbe)
	}

	// The migration Job: migrate, as the schema's owner.
	mig := o.jobs["chartscan-migrate"]
	if mig == nil || mig.Spec.Template.Spec.Containers[0].Args[0] != "migrate" ||
		envs[name+"/job/chartscan-migrate/migrate"]["DATABASE_URL"] == "" {
		t.Errorf("%s: want Job chartscan-migrate running migrate with the owner's DATABASE_URL", name)
	}

	// PodDisruptionBudgets for serve and the workers.
	for _, tmpl := range []*corev1.PodTemplateSpec{serve, worker} {
		n := 0
		for _, p := range o.pdbs {
			if p.Spec.Selector != nil && selects(p.Spec.Selector.MatchLabels, tmpl.Labels) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: pods %v: %d PodDisruptionBudgets, want 1", name, tmpl.Labels, n)
		}
	}

	// NetworkPolicies: every chartscan pod under a default deny; a worker's egress to
	// Redis, PostgreSQL, MinIO and DNS only, and its ingress to its metrics only.
	deny := o.netpols["chartscan-default-deny"]
	if deny == nil || len(deny.Spec.Ingress)+len(deny.Spec.Egress) != 0 || len(deny.Spec.PolicyTypes) != 2 {
		t.Fatalf("%s: want NetworkPolicy chartscan-default-deny denying ingress and egress", name)
	}
	for _, p := range pods {
		if !selects(deny.Spec.PodSelector.MatchLabels, p.meta) {
			t.Errorf("%s: the default deny does not select its pods", p.where)
		}
	}
	wp := o.netpols["chartscan-worker"]
	if wp == nil || !selects(wp.Spec.PodSelector.MatchLabels, worker.Labels) || selects(wp.Spec.PodSelector.MatchLabels, serve.Labels) {
		t.Fatalf("%s: want NetworkPolicy chartscan-worker selecting the workers alone", name)
	}
	stores := map[string]int32{"redis": 6379, "postgresql": 5432, "minio": 9000}
	reached := map[string]bool{}
	for _, rule := range wp.Spec.Egress {
		if len(rule.To) != 1 || rule.To[0].PodSelector == nil || rule.To[0].IPBlock != nil {
			t.Errorf("%s: worker egress %v: want one peer, a pod selector", name, rule.To)
			continue
		}
		peer := rule.To[0].PodSelector.MatchLabels
		if store := peer["app.kubernetes.io/name"]; stores[store] != 0 {
			if len(rule.Ports) != 1 || rule.Ports[0].Port == nil || rule.Ports[0].Port.IntVal != stores[store] {
				t.Errorf("%s: worker egress to %s: ports %v, want %d", name, store, rule.Ports, stores[store])
			}
			reached[store] = true
			continue
		}
		if peer["k8s-app"] != "kube-dns" {
			t.Errorf("%s: worker egress to %v: workers reach only Redis, PostgreSQL, MinIO (and DNS)", name, peer)
		}
		for _, p := range rule.Ports {
			if p.Port == nil || p.Port.IntVal != 53 {
				t.Errorf("%s: worker egress to DNS on %v", name, p.Port)
			}
		}
	}
	if len(reached) != len(stores) {
		t.Errorf("%s: worker egress reaches %v, want Redis, PostgreSQL and MinIO", name, reached)
	}
	for _, rule := range wp.Spec.Ingress {
		for _, p := range rule.Ports {
			if p.Port == nil || p.Port.IntVal != wc.Ports[0].ContainerPort {
				t.Errorf("%s: worker ingress on %v, want its metrics port only", name, p.Port)
			}
		}
	}
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestOverlays(t *testing.T) {
	b, err := chartscan()
	if err != nil {
		t.Fatal(err)
	}
	for name, image := range overlays {
		t.Run(name, func(t *testing.T) {
			o := build(t, filesys.MakeFsOnDisk(), filepath.Join("overlays", name))
			check(t, name, image, o, b)
			switch name {
			case "local":
				if len(o.scaledObject)+len(o.hpas) != 0 {
					t.Error("local: no autoscaler wanted")
				}
			case "production":
				if len(o.scaledObject) != 1 || len(o.hpas) != 0 {
					t.Fatalf("production: want one KEDA ScaledObject, no HPA; have %d, %d", len(o.scaledObject), len(o.hpas))
				}
				checkScaledObject(t, o)
			}
		})
	}
}

// The KEDA ScaledObject: a Prometheus trigger on the ocr queue's pending tasks, scaling
// the worker Deployment, whose replica count is left to it.
func checkScaledObject(t *testing.T, o *objects) {
	so := o.scaledObject[0]
	if so.Spec.ScaleTargetRef == nil || o.deployments[so.Spec.ScaleTargetRef.Name] == nil ||
		so.Spec.ScaleTargetRef.Name != "chartscan-worker" {
		t.Errorf("ScaledObject scales %v, want Deployment chartscan-worker", so.Spec.ScaleTargetRef)
	}
	if len(so.Spec.Triggers) != 1 || so.Spec.Triggers[0].Type != "prometheus" {
		t.Fatalf("ScaledObject triggers %v: want one prometheus trigger", so.Spec.Triggers)
	}
	md := so.Spec.Triggers[0].Metadata
	if !strings.Contains(md["query"], `chartscan_queue_tasks{queue="ocr",state="pending"}`) || md["serverAddress"] == "" {
		t.Errorf("ScaledObject query %q: want chartscan_queue_tasks{queue=\"ocr\",state=\"pending\"}", md["query"])
	}
	if th, err := strconv.ParseFloat(md["threshold"], 64); err != nil || th <= 0 {
		t.Errorf("ScaledObject threshold %q", md["threshold"])
	}
	if so.Spec.MinReplicaCount == nil || so.Spec.MaxReplicaCount == nil || *so.Spec.MinReplicaCount < 1 ||
		*so.Spec.MaxReplicaCount < *so.Spec.MinReplicaCount {
		t.Errorf("ScaledObject replicas %v–%v: want at least one worker", so.Spec.MinReplicaCount, so.Spec.MaxReplicaCount)
	}
	if o.deployments["chartscan-worker"].Spec.Replicas != nil {
		t.Error("the autoscaled worker Deployment names replicas: every apply would reset the autoscaler's count")
	}
}

// The HPA alternative: the production overlay with components/hpa in place of
// components/keda (built in memory), an external metric on the same series.
func TestHPAAlternative(t *testing.T) {
	b, err := chartscan()
	if err != nil {
		t.Fatal(err)
	}
	fs := filesys.MakeFsInMemory()
	if err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return fs.WriteFile(filepath.Join("/k8s", path), data)
	}); err != nil {
		t.Fatal(err)
	}
	prod, err := os.ReadFile("overlays/production/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	hpa := strings.Replace(string(prod), "  - ../../components/keda\n", "  - ../../components/hpa\n", 1)
	if hpa == string(prod) {
		t.Fatal("overlays/production does not list ../../components/keda as a component")
	}
	if err := fs.WriteFile("/k8s/overlays/production-hpa/kustomization.yaml", []byte(hpa)); err != nil {
		t.Fatal(err)
	}
	o := build(t, fs, "/k8s/overlays/production-hpa")
	check(t, "production-hpa", overlays["production"], o, b)
	if len(o.hpas) != 1 || len(o.scaledObject) != 0 {
		t.Fatalf("want one HPA and no ScaledObject; have %d, %d", len(o.hpas), len(o.scaledObject))
	}
	h := o.hpas[0]
	if h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.Name != "chartscan-worker" || h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 1 {
		t.Errorf("HPA scales %v from %v", h.Spec.ScaleTargetRef, h.Spec.MinReplicas)
	}
	if len(h.Spec.Metrics) != 1 || h.Spec.Metrics[0].External == nil {
		t.Fatalf("HPA metrics %v: want one external metric", h.Spec.Metrics)
	}
	m := h.Spec.Metrics[0].External
	if m.Metric.Name != "chartscan_queue_tasks" || m.Metric.Selector == nil ||
		m.Metric.Selector.MatchLabels["queue"] != "ocr" || m.Metric.Selector.MatchLabels["state"] != "pending" ||
		m.Target.Type != autoscalingv2.AverageValueMetricType || m.Target.AverageValue == nil {
		t.Errorf("HPA metric %+v: want chartscan_queue_tasks{queue=ocr,state=pending} as an average value", m)
	}
	if o.deployments["chartscan-worker"].Spec.Replicas != nil {
		t.Error("the autoscaled worker Deployment names replicas")
	}
}
