package main

import (
	"errors"
	"fmt"
	"os/exec"
	"regexp"
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
	c.output = &output{spawner: s, id: r.ID, stream: r.StreamOutput}
	c.process = exec.Command("/bin/sh", "-c", r.Command)
	c.process.Env = environment(r)
	// The same writer for both: one pipe, read by one goroutine.
	c.process.Stdout, c.process.Stderr = c.output, c.output
	c.process.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	c.process.WaitDelay = pipeGrace
	if err := c.process.Start(); err != nil {
		s.journals.write(r.JournalFile, journalEntry{Host: c.key, Event: "failed", ExitCode: ptr(-1), OutputTail: ptr(err.Error())})
		s.journals.leave(r.JournalFile)
		return err
	}
	pgid := c.process.Process.Pid
	start := journalEntry{Host: c.key, Event: "start", Pid: syscall.Getpid(), Token: s.token, Pgid: pgid, Until: time.Now().UnixMilli() + r.TimeoutMs}
	s.journals.write(r.JournalFile, start)
	c.timer = time.AfterFunc(time.Duration(r.TimeoutMs)*time.Millisecond, func() { s.events <- c.timeOut })
	go func() {
		err := c.process.Wait()
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
		tail = appendTail(tail, fmt.Sprintf("\n[cutover] killed after %d ms timeout\n", r.TimeoutMs))
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
		return 137
	}
	if status, ok := state.Sys().(syscall.WaitStatus); ok && status.Signaled() {
		return 137
	}
	if waitError != nil && !errors.Is(waitError, exec.ErrWaitDelay) {
		var exitError *exec.ExitError
		if !errors.As(waitError, &exitError) {
			warn("reading the output of a command failed: %v", waitError)
		}
	}
	return state.ExitCode()
}

// output is what a command writes: its tail kept, and streamed to the worker when it asked.
type output struct {
	spawner *spawner
	id      int64
	stream  bool
	mu      sync.Mutex
	// The last bytes written, enough for the tail in any encoding once control characters are dropped.
	raw []byte
}

const rawKept = 16 * outputTailChars

func (o *output) Write(chunk []byte) (int, error) {
	o.mu.Lock()
	o.raw = append(o.raw, chunk...)
	if len(o.raw) > 2*rawKept {
		o.raw = append([]byte{}, o.raw[len(o.raw)-rawKept:]...)
	}
	o.mu.Unlock()
	if o.stream {
		o.spawner.channel.send(map[string]any{"type": "output", "id": o.id, "chunk": strings.ToValidUTF8(string(chunk), "\uFFFD")})
	}
	return len(chunk), nil
}

func (o *output) tail() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return appendTail("", string(o.raw))
}

// appendTail is commandRunner.cjs's: text decoded as UTF-8, control characters dropped, the last 4096 characters.
func appendTail(tail, chunk string) string {
	next := tail + unprintable.ReplaceAllString(strings.ToValidUTF8(chunk, "\uFFFD"), "")
	return lastUnits(next, outputTailChars)
}

// lastUnits: the end of s that is at most n UTF-16 code units long, as JavaScript's slice counts.
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
