package main

import (
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// workerChildren returns the pids of the processes the supervisor runs.
func workerChildren(t *testing.T, supervisor int) []string {
	out, _ := exec.Command("pgrep", "-P", strconv.Itoa(supervisor), "-f", "chartscan worker").Output()
	return strings.Fields(string(out))
}

// TestSupervisorRestartsAWorkerThatDies: deploy/supervise.sh, which `make run` starts the
// worker with, starts the worker again after a kill -9, and SIGTERM to the supervisor
// stops both (the worker handing its tasks back) rather than leaving an orphan.
func TestSupervisorRestartsAWorkerThatDies(t *testing.T) {
	s := newStack(t)
	sup := exec.Command("../../deploy/supervise.sh", binary, "worker")
	sup.Env = s.env
	sup.Stdout, sup.Stderr = s.logs, s.logs
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { sup.Wait(); close(exited) }()
	defer func() { sup.Process.Kill(); <-exited }()

	waitChild := func(not string) string {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if kids := workerChildren(t, sup.Process.Pid); len(kids) == 1 && kids[0] != not {
				return kids[0]
			}
		}
		t.Fatalf("no worker under the supervisor (other than %q):\n%s", not, tail(s.logs.String(), 20))
		return ""
	}
	first := waitChild("")
	time.Sleep(time.Second) // past the worker's start
	pid, _ := strconv.Atoi(first)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	second := waitChild(first)
	if !strings.Contains(s.logs.String(), "starting it again") {
		t.Errorf("the supervisor did not say it restarted the worker")
	}
	time.Sleep(2 * time.Second)
	if err := sup.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(45 * time.Second):
		t.Fatal("the supervisor did not stop within 45 s of SIGTERM")
	}
	p2, _ := strconv.Atoi(second)
	if syscall.Kill(p2, 0) == nil {
		t.Errorf("the worker (pid %d) outlived its supervisor", p2)
	}
	if !strings.Contains(s.logs.String(), "worker stopping") {
		t.Errorf("the worker was not stopped by SIGTERM (no \"worker stopping\" in its log)")
	}
}
