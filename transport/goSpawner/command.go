package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// outputTailChars is the tail's length in UTF-16 code units, as commandRunner.cjs counts it (OUTPUT_TAIL_CHARS).
const outputTailChars = 4096

// pipeGrace: after the shell exits, how long to wait for the output pipe a background service may hold open.
const pipeGrace = 500 * time.Millisecond

// unprintable: control characters other than tab and line ends (commandRunner.cjs, UNPRINTABLE, says why).
var unprintable = regexp.MustCompile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

type commandResult struct {
	ExitCode   int    `json:"exitCode"`
	OutputTail string `json:"outputTail"`
	TimedOut   bool   `json:"timedOut"`
}

type command struct {
	request  request
	spawner  *spawner
	process  *exec.Cmd
	output   *output
	timer    *time.Timer
	timedOut bool
	// What the journal files the command under: the host, or the activity for a database task.
	key string
}

func newCommand(r request, s *spawner) *command {
	key := r.JournalKey
	if key == "" {
		key = r.Host
	}
	return &command{request: r, spawner: s, key: key}
}

// start runs the command with /bin/sh in a session of its own (Node's detached), so a timeout or a kill stops
// everything it started, and journals its start with what lets a retry wait for it if this spawner is gone too.
func (c *command) start() error {
	r, s := c.request, c.spawner
	s.journals.enter(r.JournalFile)
	c.output = newOutput(s, r.ID, r.StreamOutput)
	read, write, err := os.Pipe()
	if err == nil {
		c.process = exec.Command("/bin/sh", "-c", r.Command)
		c.process.Env = environment(r)
		// One pipe for both, which the spawner reads itself (output.read): os/exec's own copying would close it
		// after a grace, and a background service the command started would die of SIGPIPE at its next line.
		c.process.Stdout, c.process.Stderr = write, write
		c.process.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		err = c.process.Start()
		write.Close()
		if err != nil {
			read.Close()
		}
	}
	if err != nil {
		// As the Node spawner does (it may write a start without a process group first): a retry counts the
		// attempt, and finds nothing that runs.
		s.journals.write(r.JournalFile, journalEntry{Host: c.key, Event: "failed", ExitCode: ptr(-1), OutputTail: ptr(err.Error())})
		s.journals.leave(r.JournalFile)
		return err
	}
	pgid := c.process.Process.Pid
	start := journalEntry{Host: c.key, Event: "start", Pid: syscall.Getpid(), Token: s.token, Pgid: pgid, Until: time.Now().UnixMilli() + int64(r.TimeoutMs)}
	s.journals.write(r.JournalFile, start)
	c.timer = time.AfterFunc(time.Duration(r.TimeoutMs*float64(time.Millisecond)), func() { s.events <- c.timeOut })
	go c.output.read(read)
	go func() {
		err := c.process.Wait()
		// The command is done when its shell exits. A service it started in the background may hold the output
		// open: give it a moment to close, then stop waiting (and never kill what it left running).
		select {
		case <-c.output.closed:
		case <-time.After(pipeGrace):
		}
		s.events <- func() { c.finish(err) }
	}()
	return nil
}

func (c *command) timeOut() {
	if c.spawner.running[c.request.ID] != c {
		return
	}
	c.timedOut = true
	c.kill()
}

func (c *command) kill() {
	if c.process != nil && c.process.Process != nil {
		// Already gone is fine.
		_ = syscall.Kill(-c.process.Process.Pid, syscall.SIGKILL)
	}
}

// finish journals the command's end (a failure with its output too: a retry counts it against the step's attempts),
// answers the worker, and lets the group commit make the end durable.
func (c *command) finish(waitError error) {
	c.timer.Stop()
	r, s := c.request, c.spawner
	tail := c.output.tail()
	if c.timedOut {
		tail = appendTail(tail, fmt.Sprintf("\n[cutover] killed after %s ms timeout\n", strconv.FormatFloat(r.TimeoutMs, 'f', -1, 64)))
	}
	result := commandResult{ExitCode: exitCode(c.process, waitError), OutputTail: tail, TimedOut: c.timedOut}
	event, journaled := "done", tail
	if result.ExitCode != 0 || c.timedOut {
		event = "failed"
	}
	if r.JournalOutput != nil && !*r.JournalOutput {
		journaled = ""
	}
	s.journals.write(r.JournalFile, journalEntry{Host: c.key, Event: event, ExitCode: ptr(result.ExitCode), OutputTail: ptr(journaled)})
	s.finished(c, result)
	s.journals.commit(r.JournalFile, func() { s.journals.leave(r.JournalFile) })
}

// exitCode is the shell's, or 137 when a signal ended it (Node's `code ?? 137`).
func exitCode(process *exec.Cmd, waitError error) int {
	state := process.ProcessState
	if state == nil {
		warn("waiting for a command failed: %v", waitError)
		return 137
	}
	if status, ok := state.Sys().(syscall.WaitStatus); ok && status.Signaled() {
		return 137
	}
	return state.ExitCode()
}

// output is what a command writes: its tail kept, and streamed to the worker when it asked, until the command's
// result is taken (tail); after that it is read and dropped, so that a service left running never writes into a
// closed pipe.
type output struct {
	spawner *spawner
	id      int64
	stream  bool
	// Closed when every writer has closed the pipe.
	closed chan struct{}
	mu     sync.Mutex
	// The last bytes written, enough for the tail in any encoding once control characters are dropped.
	raw  []byte
	done bool
}

const rawKept = 16 * outputTailChars

func newOutput(s *spawner, id int64, stream bool) *output {
	return &output{spawner: s, id: id, stream: stream, closed: make(chan struct{})}
}

func (o *output) read(pipe *os.File) {
	defer close(o.closed)
	defer pipe.Close()
	chunk := make([]byte, 64*1024)
	for {
		n, err := pipe.Read(chunk)
		if n > 0 {
			o.keep(chunk[:n])
		}
		if err != nil {
			return
		}
	}
}

func (o *output) keep(chunk []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done {
		return
	}
	o.raw = append(o.raw, chunk...)
	if len(o.raw) > 2*rawKept {
		o.raw = append([]byte{}, o.raw[len(o.raw)-rawKept:]...)
	}
	if o.stream {
		// Under the lock, so no chunk is streamed after the result (tail takes the lock first).
		o.spawner.channel.send(map[string]any{"type": "output", "id": o.id, "chunk": strings.ToValidUTF8(string(chunk), "\uFFFD")})
	}
}

// tail is the command's output tail; what it writes afterwards is dropped.
func (o *output) tail() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.done = true
	return appendTail("", string(o.raw))
}

// appendTail is commandRunner.cjs's: text decoded as UTF-8, control characters dropped, the last 4096 characters.
// A run of invalid bytes becomes one U+FFFD here, one per invalid sequence in Node.
func appendTail(tail, chunk string) string {
	next := tail + unprintable.ReplaceAllString(strings.ToValidUTF8(chunk, "\uFFFD"), "")
	return lastUnits(next, outputTailChars)
}

// lastUnits: the end of s that is at most n UTF-16 code units long, as JavaScript's slice counts. Where only half of
// a surrogate pair would fit, JavaScript keeps that half; UTF-8 cannot, so the tail is one unit shorter.
func lastUnits(s string, n int) string {
	units := 0
	for i := len(s); i > 0; {
		r, size := utf8.DecodeLastRuneInString(s[:i])
		units++
		if r > 0xffff {
			// A surrogate pair.
			units++
		}
		if units > n {
			return s[i:]
		}
		i -= size
	}
	return s
}

func ptr[T any](value T) *T {
	return &value
}
