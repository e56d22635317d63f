package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/indexer"
	"github.com/chartscan/chartscan/mllp"
	"github.com/chartscan/chartscan/storage"
	"github.com/chartscan/chartscan/worker"
)

// hl7Peer is the real HL7 client the ADT tests send with: @medplum/hl7's MLLP client,
// installed by deploy/install.sh (npm ci, pinned by the lockfile).
const hl7Peer = "../../testdata/hl7peer"

// checkDigitMRN returns a nine-digit MRN ending in its Luhn check digit.
func checkDigitMRN(body int) string {
	b := fmt.Sprintf("%08d", body)
	sum := 0
	for i := len(b) - 1; i >= 0; i-- {
		d := int(b[i] - '0')
		if (len(b)-1-i)%2 == 0 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return b + fmt.Sprint((10-sum%10)%10)
}

// adtProc is a running `chartscan adt`.
type adtProc struct {
	proc
	addr string
}

// startADT starts `chartscan adt` on a free port and waits until it listens.
func (s *stack) startADT(extra ...string) *adtProc {
	s.t.Helper()
	cmd := exec.Command(binary, append([]string{"adt", "--addr", "127.0.0.1:0"}, extra...)...)
	cmd.Env = s.env
	cmd.Stderr = s.logs
	out, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	p := &adtProc{proc: proc{cmd: cmd, logs: s.logs}}
	s.t.Cleanup(func() { p.stop(syscall.SIGKILL) })
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
	}()
	select {
	case l := <-line:
		i := strings.LastIndex(l, " on ")
		if i < 0 {
			s.t.Fatalf("chartscan adt said %q, not where it listens", l)
		}
		p.addr = l[i+4:]
	case <-time.After(60 * time.Second):
		s.t.Fatalf("chartscan adt did not start listening:\n%s", s.logs)
	}
	return p
}

// ackLine is one acknowledgement the HL7 peer printed.
type ackLine struct {
	ControlID string `json:"control_id"`
	Ack       string `json:"ack"`
	AckedID   string `json:"acked_id"`
	Text      string `json:"text"`
	Where     string `json:"error_location"`
}

// sendHL7 sends the messages of path to addr with the real HL7 client, one at a time,
// and returns its acknowledgements.
func sendHL7(t *testing.T, addr, path string, extra ...string) []ackLine {
	t.Helper()
	if _, err := os.Stat(filepath.Join(hl7Peer, "node_modules", "@medplum", "hl7")); err != nil {
		t.Fatalf("the HL7 peer is not installed (%v): deploy/install.sh runs npm ci in %s", err, hl7Peer)
	}
	_, port, _ := strings.Cut(addr, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append(append([]string{"send.mjs", "--port", port}, extra...), path)...)
	cmd.Dir = hl7Peer
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("node send.mjs: %v\n%s\n%s", err, out, stderr)
	}
	var acks []ackLine
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var a ackLine
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatalf("peer output %q: %v", l, err)
		}
		acks = append(acks, a)
	}
	return acks
}

// empiState is the EMPI as a comparable value: every patient and alias, with when each
// patient last changed.
func empiState(t *testing.T, s *stack) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.getenv("DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var state string
	err = conn.QueryRow(ctx, `SELECT
		coalesce((SELECT string_agg(concat_ws('|', mrn, family, given, birth_date, birth_partial, sex, phone, updated_at), E'\n' ORDER BY mrn) FROM patients), '')
		|| E'\n--\n' ||
		coalesce((SELECT string_agg(alias_mrn || '>' || mrn, E'\n' ORDER BY alias_mrn) FROM patient_aliases), '')`).Scan(&state)
	if err != nil {
		t.Fatal(err)
	}
	return state
}

// adtFixture is a stack with a small EMPI and one finished document whose only page
// belongs to a patient the EMPI does not hold yet: unmatched until they are registered.
type adtFixture struct {
	s       *stack
	db      *storage.DB
	doc     string
	lateMRN string
}

func newADTFixture(t *testing.T) *adtFixture {
	t.Helper()
	ctx := context.Background()
	s := newStack(t)
	s.importEMPI("mrn,family,given,birth_date,sex\n" +
		checkDigitMRN(5100001) + ",Brightwater,Odile,1958-02-11,female\n" +
		checkDigitMRN(5100002) + ",Castellane,Remy,1961-09-30,male\n")
	db := s.openDB(ctx)
	f := &adtFixture{s: s, db: db, lateMRN: checkDigitMRN(5200077)}
	batch := uuid.NewString()
	if _, err := db.CreateBatch(ctx, chartscan.Batch{ID: batch}); err != nil {
		t.Fatal(err)
	}
	d, _, err := db.AddDocument(ctx, batch, chartscan.Document{ID: uuid.NewString(), SHA256: uuid.NewString(),
		FileName: "late.pdf", ContentType: "application/pdf", Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	f.doc = d.ID
	if err := db.SavePage(ctx, chartscan.Page{DocumentID: d.ID, Number: 1, ImageKey: "k", ImageType: "image/png", Width: 1, Height: 1, DPI: 300}); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveOCR(ctx, d.ID, 1, chartscan.Reading{Text: "SYNTHETIC TEST RECORD", Confidence: 92, Quality: 92}); err != nil {
		t.Fatal(err)
	}
	sure := func(kind chartscan.IdentifierKind, v string) chartscan.Identifier {
		return chartscan.Identifier{Kind: kind, Value: v, Raw: v, Confidence: 0.96, Box: chartscan.Box{X1: 10, Y1: 10}}
	}
	if err := db.SaveIdentifiers(ctx, d.ID, 1, []chartscan.Identifier{sure(chartscan.KindMRN, f.lateMRN),
		sure(chartscan.KindName, "LATEREGISTER, Philippa"), sure(chartscan.KindDOB, "1983-07-19"), sure(chartscan.KindPageNumber, "1/1")}); err != nil {
		t.Fatal(err)
	}
	if err := db.SetPageCount(ctx, d.ID, 1); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveFilings(ctx, d.ID, nil); err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Config{Store: db, Model: indexer.DefaultModel(), Pages: worker.PagePolicy{QualityFloor: 50},
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Refile(ctx, d.ID, false); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.page(t); st != chartscan.StatusUnmatched {
		t.Fatalf("fixture: the late patient's page is %s before the registration, want unmatched", st)
	}
	return f
}

// page returns the status and MRN of the fixture's page.
func (f *adtFixture) page(t *testing.T) (chartscan.PageStatus, string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, f.s.getenv("DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var st string
	var mrn *string
	if err := conn.QueryRow(ctx, `SELECT status, mrn FROM pages WHERE document_id = $1 AND page_no = 1`, f.doc).Scan(&st, &mrn); err != nil {
		t.Fatal(err)
	}
	if mrn == nil {
		return chartscan.PageStatus(st), ""
	}
	return chartscan.PageStatus(st), *mrn
}

// writeHL7 writes messages (segments joined by \r) to a file.
func writeHL7(t *testing.T, msgs []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stream.hl7")
	if err := os.WriteFile(path, []byte(strings.Join(msgs, "\r")+"\r"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func adtMsg(event, id string, segs ...string) string {
	return strings.Join(append([]string{
		"MSH|^~\\&|SIMHOSP|NORTH|CHARTSCAN|MAIN|20260101120000||ADT^" + event + "|" + id + "|P|2.5",
		"EVN|" + event + "|20260101120000"}, segs...), "\r")
}

// TestADTListenerStream is issue 12's test of the live feed: `chartscan adt` takes a
// stream of A04, A08, A40, A34 and the messages a feed gets wrong from a real HL7 client
// over MLLP, answers each with the right acknowledgement, leaves the EMPI as the stream
// says, files the page of a patient registered late, and changes nothing when the whole
// stream is sent again. Neither the acknowledgements nor the logs show patient data.
func TestADTListenerStream(t *testing.T) {
	f := newADTFixture(t)
	s := f.s
	odile, remy := checkDigitMRN(5100001), checkDigitMRN(5100002)
	stub, newcomer, survivor := checkDigitMRN(5300001), checkDigitMRN(5300002), checkDigitMRN(5300003)
	stream := []string{
		// A trauma patient registered without a name, then merged into the real identity.
		adtMsg("A04", "M01", "PID|1||"+stub+"^^^NORTH^MR||||||U"),
		adtMsg("A08", "M02", "PID|1||"+odile+"^^^NORTH^MR||BRIGHTWATER^ODILE||19580211|F|||||^PRN^PH^^^555^0142"),
		adtMsg("A34", "M03", "PID|1||"+odile+"^^^NORTH^MR", "MRG|"+stub+"^^^NORTH^MR"),
		// The late registration of the patient whose page is unmatched.
		adtMsg("A04", "M04", "PID|1||"+f.lateMRN+"^^^NORTH^MR||LATEREGISTER^PHILIPPA||19830719|F"),
		// A merge whose survivor is not registered yet: created from the PID.
		adtMsg("A04", "M05", "PID|1||"+newcomer+"^^^NORTH^MR||DUPLICATE^ENTRY||19610930|M"),
		adtMsg("A40", "M06", "PID|1||"+survivor+"^^^NORTH^MR||NEWFOUNDLAND^ROSALIND||19700412|F", "MRG|"+newcomer+"^^^NORTH^MR"),
		// A merge of a registered patient into another registered one.
		adtMsg("A40", "M07", "PID|1||"+odile+"^^^NORTH^MR||BRIGHTWATER^ODILE||19580211|F", "MRG|"+remy+"^^^NORTH^MR"),
		// What a feed gets wrong: a late update of a merged MRN, a PID without MRN, an
		// unmerge, a lab result on the ADT port.
		adtMsg("A08", "M08", "PID|1||"+stub+"^^^NORTH^MR||STUBBORN^PATIENT"),
		adtMsg("A04", "M09", "PID|1||^^^NORTH^MR||NONUMBER^NORA||19900101|F"),
		adtMsg("A37", "M10", "PID|1||"+odile+"^^^NORTH^MR", "MRG|"+remy+"^^^NORTH^MR"),
		"MSH|^~\\&|LAB|NORTH|CHARTSCAN|MAIN|20260101120000||ORU^R01|M11|P|2.5\rPID|1||" + odile + "^^^NORTH^MR\rOBX|1|NM|GLU||5.5",
		// A discharge changes nothing, and is acknowledged.
		adtMsg("A03", "M12", "PID|1||"+odile+"^^^NORTH^MR||BRIGHTWATER^ODILE"),
	}
	want := []ackLine{
		{ControlID: "M01", Ack: "AA"}, {ControlID: "M02", Ack: "AA"}, {ControlID: "M03", Ack: "AA"}, {ControlID: "M04", Ack: "AA"},
		{ControlID: "M05", Ack: "AA"}, {ControlID: "M06", Ack: "AA"}, {ControlID: "M07", Ack: "AA"},
		{ControlID: "M08", Ack: "AE", Text: "PID-3: MRN merged into another patient; send changes for the survivor", Where: "PID^1^3"},
		{ControlID: "M09", Ack: "AE", Text: "PID-3: no MRN", Where: "PID^1^3"},
		{ControlID: "M10", Ack: "AE", Text: "MSH-9: unmerge needs a person to undo the merge; refusal audited", Where: "MSH^1^9"},
		{ControlID: "M11", Ack: "AR", Text: "MSH-9: message type not supported: this listener takes ADT", Where: "MSH^1^9"},
		{ControlID: "M12", Ack: "AA"},
	}
	for i := range want {
		want[i].AckedID = want[i].ControlID
	}
	path := writeHL7(t, stream)
	adt := s.startADT()
	got := sendHL7(t, adt.addr, path)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("acknowledgements (-want +got):\n%s", diff)
	}

	// The EMPI after the stream.
	patients := map[string]bool{}
	conn, err := pgx.Connect(context.Background(), s.getenv("DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := conn.Query(context.Background(), `SELECT mrn FROM patients`)
	for rows.Next() {
		var m string
		rows.Scan(&m)
		patients[m] = true
	}
	rows.Close()
	conn.Close(context.Background())
	wantPatients := map[string]bool{odile: true, f.lateMRN: true, survivor: true}
	if diff := cmp.Diff(wantPatients, patients); diff != "" {
		t.Errorf("patients after the stream (-want +got):\n%s", diff)
	}
	if n := s.dbCount(`SELECT count(*) FROM patient_aliases WHERE (alias_mrn, mrn) IN (($1, $2), ($3, $4), ($5, $2))`,
		stub, odile, newcomer, survivor, remy); n != 3 {
		t.Errorf("%d of the 3 merges are aliases", n)
	}
	if n := s.dbCount(`SELECT count(*) FROM patients WHERE mrn = $1 AND family = 'NEWFOUNDLAND' AND given = 'ROSALIND'`, survivor); n != 1 {
		t.Error("the survivor of a merge into an unregistered patient was not created from the PID")
	}
	if n := s.dbCount(`SELECT count(*) FROM patients WHERE mrn = $1 AND phone <> '' AND family = 'BRIGHTWATER'`, odile); n != 1 {
		t.Error("the A08 did not update the patient")
	}
	if n := s.dbCount(`SELECT count(*) FROM audit_log WHERE action = 'empi.unmerge' AND outcome = 'refused'`); n != 1 {
		t.Errorf("%d unmerge refusals audited, want 1", n)
	}

	// The page of the patient registered late is filed to them.
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, mrn := f.page(t)
		if st == chartscan.StatusAuto && mrn == f.lateMRN {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the late patient's page is %s (%q) a minute after the registration, want auto to them", st, mrn)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The whole stream again, as an engine replays it: the same answers, nothing changes.
	before := empiState(t, s)
	if again := sendHL7(t, adt.addr, path); !cmp.Equal(want, again) {
		t.Errorf("replayed stream, acknowledgements (-want +got):\n%s", cmp.Diff(want, again))
	}
	if after := empiState(t, s); after != before {
		t.Errorf("replaying the stream changed the EMPI:\nbefore\n%s\nafter\n%s", before, after)
	}
	// And importing it as a file changes nothing either: every message was applied.
	if out := s.mustRun("records", "import", path); !strings.Contains(out, "0 new, 0 updated, 0 unchanged; 0 merges moved 0 filed pages; 7 applied before; 3 skipped") {
		t.Errorf("records import of the replayed stream: %q", out)
	}
	if after := empiState(t, s); after != before {
		t.Error("importing the stream as a file changed the EMPI")
	}

	adt.stop(syscall.SIGTERM)
	if code := adt.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("chartscan adt exited %d on SIGTERM, want 0", code)
	}
	if n := s.dbCount(`SELECT count(*) FROM audit_log WHERE action = 'empi.adt'`); n < 2 {
		t.Errorf("%d connections audited, want one per connection (2)", n)
	}
	logs := s.logs.String()
	for _, phi := range []string{"BRIGHTWATER", "Brightwater", "LATEREGISTER", "PHILIPPA", "NEWFOUNDLAND", "STUBBORN", "NONUMBER", "19830719", "1983-07-19"} {
		if strings.Contains(logs, phi) {
			t.Errorf("the logs show the patient value %q", phi)
		}
	}
}

// TestADTListenerLatin1AndFraming sends, with the shared MLLP client, what a hospital's
// older interface sends: a Latin-1 message (MSH-18 8859/1), a message without MSH-18 in
// Windows-1252, and garbage; the names are stored as UTF-8 and the garbage is rejected
// with an AR, never a database error.
func TestADTListenerLatin1AndFraming(t *testing.T) {
	f := newADTFixture(t)
	adt := f.s.startADT()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := mllp.Dial(ctx, adt.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	latin1, cp1252 := checkDigitMRN(5400001), checkDigitMRN(5400002)
	send := func(msg string) string {
		t.Helper()
		ack, err := c.Send(ctx, []byte(msg))
		if err != nil {
			t.Fatal(err)
		}
		return string(ack)
	}
	tests := []struct{ msg, wantMSA string }{
		{"MSH|^~\\&|OLD|NORTH|CS|MAIN|2026||ADT^A04|L1|P|2.3||||||8859/1\rPID|1||" + latin1 + "^^^NORTH^MR||M\xdcLLER^B\xc9ATRICE||19750101|F\r", "MSA|AA|L1"},
		{"MSH|^~\\&|OLD|NORTH|CS|MAIN|2026||ADT^A04|L2|P|2.3\rPID|1||" + cp1252 + "^^^NORTH^MR||O\x92NEILL^Z\xd6E||1975|F\r", "MSA|AA|L2"},
		{"MSH|^~\\&|OLD|NORTH|CS|MAIN|2026||ADT^A04|L3|P|2.3||||||ISO IR87\rPID|1||1^^^NORTH^MR||X\r", "MSA|AR|L3|MSH-18: character set not supported"},
		{"this is not HL7", "MSA|AR||MSH: the message does not start with an MSH segment"},
		{"MSH|^~\\&|OLD|NORTH|CS|MAIN|2026||ADT^A04|L4|P|2.5||||||UNICODE UTF-8\rPID|1||1^^^NORTH^MR||\xff\xfe\x00\r", "MSA|AR|L4|MSH-18: text is not valid in the declared character set"},
	}
	for _, tt := range tests {
		if ack := send(tt.msg); !strings.Contains(ack, "\r"+tt.wantMSA+"\r") && !strings.Contains(ack, "\r"+tt.wantMSA+"|") {
			t.Errorf("ack %q, want %s", ack, tt.wantMSA)
		}
	}
	for mrn, name := range map[string]string{latin1: "MÜLLER|BÉATRICE", cp1252: "O’NEILL|ZÖE"} {
		if n := f.s.dbCount(`SELECT count(*) FROM patients WHERE mrn = $1 AND family || '|' || given = $2`, mrn, name); n != 1 {
			t.Errorf("patient %s not stored as %q", mrn, name)
		}
	}
	if strings.Contains(f.s.logs.String(), "invalid byte sequence") {
		t.Error("a database encoding error reached the log")
	}
}
