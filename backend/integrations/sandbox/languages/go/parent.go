// Package harness is the Go grading harness: the trusted code that runs *inside* the sandbox.
//
// It is linked into one program with the submission (solution.go, package main) and the dispatch file the
// API generates (dispatch.go: a map from the names the tests call to the submission's functions). The
// program runs in one of three modes, chosen by the CODEMENTOR_HARNESS variable, which this package reads
// and removes before any code of the submission runs (it is initialised before package main):
//   - the parent (no variable): reads the job on stdin, exactly harness.js's protocol (see its header),
//     and runs each test in a child process of its own: a fresh exec of this program told that one test
//     and nothing else. It never runs submission code: it exits before package main is initialised.
//   - "call": reads its one test on descriptor 3, calls the function (or runs the operations) through
//     dispatch.go's map, and writes the encoded result on descriptor 4 (child.go).
//   - "program": returns, and the submission's main runs with the test's stdin.
//
// The parent reports on `--results-fd N` in the events of harness.js (base.Report on the server); it is
// never told expected values. Each child's stdout and stderr are that test's output (capped); a child
// over the per-test time limit is killed (an endless loop costs one test: the run then stops, as
// harness.js does); after each test every other process of the sandbox is killed and reaped (the parent
// is the PID namespace's init). The parent is non-dumpable: children of the same uid cannot read its
// memory (which holds every test) through /proc.
package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	modeVariable   = "CODEMENTOR_HARNESS"
	maxResultBytes = 16 << 20
	doneLine       = "{\"event\": \"done\"}\n" // exactly as the runner looks for it
)

type job struct {
	Tests         []json.RawMessage `json:"tests"`
	OutputCap     int               `json:"output_cap"`
	TestTimeoutMS int               `json:"test_timeout_ms"`
}

type testInput struct {
	Function string            `json:"function"`
	Args     []json.RawMessage `json:"args"`
	Ops      []json.RawMessage `json:"ops"`
	Stdin    *string           `json:"stdin"`
}

var (
	mode     string
	testData []byte // a call child's one test, read before the submission is initialised
	results  *os.File
)

func init() {
	mode = os.Getenv(modeVariable)
	os.Unsetenv(modeVariable)
	switch mode {
	case "":
		os.Exit(parent())
	case "call":
		in := os.NewFile(3, "test")
		testData, _ = io.ReadAll(io.LimitReader(in, maxResultBytes))
		in.Close()
		results = os.NewFile(4, "result")
		syscall.CloseOnExec(4)
		limitMemory()
	}
}

func parent() int {
	fd := 3
	for i, arg := range os.Args {
		if arg == "--results-fd" && i+1 < len(os.Args) {
			if n, err := strconv.Atoi(os.Args[i+1]); err == nil {
				fd = n
			}
		}
	}
	syscall.CloseOnExec(fd) // the children get their own descriptors, never the result channel
	results = os.NewFile(uintptr(fd), "results")
	syscall.Syscall(syscall.SYS_PRCTL, syscall.PR_SET_DUMPABLE, 0, 0)
	// Nothing in the sandbox may stop the parent with a signal (it is init there; children could try).
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2,
		syscall.SIGALRM, syscall.SIGPIPE, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGXCPU)
	var j job
	raw, err := io.ReadAll(os.Stdin)
	if err == nil {
		err = json.Unmarshal(raw, &j)
	}
	if err != nil {
		emit(map[string]any{"event": "import_error", "message": "the harness could not read its job"})
		results.WriteString(doneLine)
		return 0
	}
	if j.OutputCap <= 0 {
		j.OutputCap = 64 * 1024
	}
	if j.TestTimeoutMS <= 0 {
		j.TestTimeoutMS = 5000
	}
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	emit(map[string]any{"event": "started"})
	for index, rawTest := range j.Tests {
		var test testInput
		if json.Unmarshal(rawTest, &test) != nil {
			continue
		}
		emit(map[string]any{"event": "begin", "index": index})
		if test.Stdin != nil {
			runProgram(self, index, *test.Stdin, j)
		} else if runCall(self, index, rawTest, j) {
			break // timed out: the rest would most likely loop too, and the run is a timeout anyway
		}
	}
	reapAll()
	results.WriteString(doneLine)
	return 0
}

func emit(event map[string]any) {
	line, err := json.Marshal(event)
	if err != nil {
		line, _ = json.Marshal(map[string]any{"event": event["event"], "index": event["index"], "error": "unreportable"})
	}
	results.Write(append(line, '\n'))
}

// outcome is what one child did: its output, how it ended, and (for a call) what it reported.
type outcome struct {
	stdout, stderr string
	result         []byte
	timedOut       bool
	overflow       bool
	state          *os.ProcessState
	ms             float64
}

// cappedBuffer keeps at most limit bytes and calls over() once when more arrive.
type cappedBuffer struct {
	limit int
	data  bytes.Buffer
	over  func()
	spent bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	room := b.limit - b.data.Len()
	if len(p) > room {
		if room > 0 {
			b.data.Write(p[:room])
		}
		if !b.spent {
			b.spent = true
			b.over()
		}
		return len(p), nil
	}
	return b.data.Write(p)
}

func runChild(self, childMode string, stdin string, test []byte, j job) outcome {
	var out outcome
	cmd := exec.Command(self)
	cmd.Env = []string{"PATH=/usr/bin", "HOME=/tmp", "GOMAXPROCS=2", modeVariable + "=" + childMode}
	cmd.Dir = "/tmp"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var files []*os.File // the child's ends, closed here once it started
	pipe := func() (*os.File, *os.File) {
		r, w, err := os.Pipe()
		if err != nil {
			panic(err)
		}
		return r, w
	}
	outR, outW := pipe()
	errR, errW := pipe()
	cmd.Stdout, cmd.Stderr = outW, errW
	files = append(files, outW, errW)
	var inW, testW, resultR *os.File
	if childMode == "program" {
		var inR *os.File
		inR, inW = pipe()
		cmd.Stdin = inR
		files = append(files, inR)
	} else {
		var testR, resultW *os.File
		testR, testW = pipe()
		resultR, resultW = pipe()
		cmd.ExtraFiles = []*os.File{testR, resultW}
		files = append(files, testR, resultW)
	}
	started := time.Now()
	err := cmd.Start()
	for _, f := range files {
		f.Close()
	}
	if err != nil {
		outR.Close()
		errR.Close()
		out.stderr = "could not start the test: " + err.Error()
		return out
	}
	kill := func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var overflowed = make(chan struct{}, 1)
	overflow := func() {
		select {
		case overflowed <- struct{}{}:
		default:
		}
		kill()
	}
	stdoutBuf := &cappedBuffer{limit: j.OutputCap, over: overflow}
	stderrBuf := &cappedBuffer{limit: j.OutputCap, over: overflow}
	resultBuf := &cappedBuffer{limit: maxResultBytes, over: overflow}
	readers := make(chan struct{}, 3)
	drain := func(r *os.File, into io.Writer) {
		io.Copy(into, r)
		r.Close()
		readers <- struct{}{}
	}
	count := 2
	go drain(outR, stdoutBuf)
	go drain(errR, stderrBuf)
	if resultR != nil {
		count++
		go drain(resultR, resultBuf)
	}
	if inW != nil {
		go func() { io.WriteString(inW, stdin); inW.Close() }()
	}
	if testW != nil {
		go func() { testW.Write(test); testW.Close() }()
	}
	exited := make(chan *os.ProcessState, 1)
	go func() {
		state, _ := cmd.Process.Wait()
		exited <- state
	}()
	timer := time.NewTimer(time.Duration(j.TestTimeoutMS) * time.Millisecond)
	select {
	case out.state = <-exited:
		timer.Stop()
	case <-timer.C:
		out.timedOut = true
		kill()
		out.state = <-exited
	}
	out.ms = float64(time.Since(started).Microseconds()) / 1000
	reapAll() // whatever the test started is gone too: no writer of its pipes survives
	for i := 0; i < count; i++ {
		<-readers
	}
	select {
	case <-overflowed:
		out.overflow = true
	default:
	}
	out.stdout, out.stderr, out.result = stdoutBuf.data.String(), stderrBuf.data.String(), resultBuf.data.Bytes()
	return out
}

// reapAll kills every process of the sandbox but this one, and reaps them: the parent is the PID
// namespace's init (bubblewrap --as-pid-1), so orphans of a test become its children.
func reapAll() {
	if os.Getpid() == 1 {
		syscall.Kill(-1, syscall.SIGKILL)
	}
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, 0, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

// crashMessage is the line of a child's stderr that says why it died: Go's "panic: ..." or "fatal error: ...".
func crashMessage(stderr string, state *os.ProcessState) string {
	for _, line := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ") {
			return strings.TrimSuffix(cut(line, 300), " [recovered]")
		}
	}
	if state == nil {
		return "the test could not run"
	}
	if status, ok := state.Sys().(syscall.WaitStatus); ok && status.Signaled() {
		return "killed by signal " + status.Signal().String()
	}
	return fmt.Sprintf("exited with status %d", state.ExitCode())
}

func cut(text string, limit int) string {
	if len(text) > limit {
		return text[:limit]
	}
	return text
}

func runProgram(self string, index int, stdin string, j job) {
	out := runChild(self, "program", stdin, nil, j)
	var errorText any
	switch {
	case out.overflow:
		errorText = "output limit exceeded"
	case out.timedOut:
		errorText = "timed out"
	case out.state == nil || !out.state.Success():
		errorText = crashMessage(out.stderr, out.state)
	}
	emit(map[string]any{"event": "program", "index": index, "stdout": out.stdout, "error": errorText,
		"truncated": out.overflow, "ms": out.ms})
	emit(map[string]any{"event": "output", "test": index, "stdout": out.stdout, "stderr": out.stderr})
}

// runCall runs one call (or sequence of operations) in a child; true when it timed out.
func runCall(self string, index int, test []byte, j job) bool {
	out := runChild(self, "call", "", test, j)
	event := map[string]any{"event": "call", "index": index, "value": nil, "error": nil, "exception": nil, "ms": out.ms}
	var reported struct {
		Value json.RawMessage `json:"value"`
		Error *string         `json:"error"`
		MS    *float64        `json:"ms"`
	}
	switch {
	case out.overflow:
		event["error"] = "output limit exceeded"
	case out.timedOut:
		event["error"] = "timed out"
	case json.Unmarshal(out.result, &reported) == nil && (reported.Value != nil || reported.Error != nil):
		if reported.Error != nil {
			event["error"] = cut(*reported.Error, 300)
		} else {
			event["value"] = reported.Value
		}
		if reported.MS != nil {
			event["ms"] = *reported.MS
		}
	default:
		event["error"] = crashMessage(out.stderr, out.state)
	}
	if out.stdout != "" || out.stderr != "" {
		emit(map[string]any{"event": "output", "test": index, "stdout": out.stdout, "stderr": out.stderr})
	}
	emit(event)
	return out.timedOut
}
