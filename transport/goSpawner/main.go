// Command cutover-spawner is the worker's spawner (transport/spawner.ts) in Go: it spawns the host commands, journals
// each one's start and end, and answers over the worker's IPC channel, as transport/commandRunner.cjs does: the same
// messages and journal lines (test/activities/spawners.test.ts runs the contract against both). Node forks the
// whole spawner process for each command (about 1.1 ms of the spawner's CPU); Go's os/exec starts a command with a
// vfork-like clone (about 0.2 ms), see docs/benchmarks.md.
//
// One goroutine, the loop below, owns every piece of state, as the Node spawner's event loop does: the commands
// under way, the open journals and their group commits. Other goroutines (the channel's reader, each command's wait,
// each fsync) only send it events.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
)

// request is a message from the worker: {type: 'run', id, command, host, ...} or {type: 'kill', id}.
type request struct {
	Type          string            `json:"type"`
	ID            int64             `json:"id"`
	Command       string            `json:"command"`
	Host          string            `json:"host"`
	Env           map[string]string `json:"env"`
	WithoutEnv    []string          `json:"withoutEnv"`
	TimeoutMs     float64           `json:"timeoutMs"`
	JournalFile   string            `json:"journalFile"`
	JournalKey    string            `json:"journalKey"`
	JournalOutput *bool             `json:"journalOutput"`
	StreamOutput  bool              `json:"streamOutput"`
}

type spawner struct {
	token    string
	channel  *channel
	events   chan func()
	running  map[int64]*command
	journals *journals
	// The worker is gone: finish what runs, journal it, then exit.
	orphaned bool
}

func main() {
	fd, err := strconv.Atoi(os.Getenv("NODE_CHANNEL_FD"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "cutover-spawner: no IPC channel (NODE_CHANNEL_FD); the worker starts this program, not a person")
		os.Exit(2)
	}
	// The channel is the worker's and this process's alone: a command must neither inherit it (a tool writing to
	// fd 3 would break the worker's channel, and could forge results) nor keep it open after the spawner.
	syscall.CloseOnExec(fd)
	// Caught rather than ignored, since an ignored signal would stay ignored in the commands the spawner starts:
	// - SIGPIPE: a write to a closed stderr (the worker's, gone with it) must fail, not end the spawner, as Go does by
	//   default for standard output and error;
	// - SIGINT and SIGHUP: Ctrl-C or a closed terminal reach the worker's whole process group. The worker shuts down;
	//   the spawner finishes the commands under way and journals them, as when the worker is killed.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE, syscall.SIGINT, syscall.SIGHUP)
	token := ""
	if len(os.Args) > 1 {
		token = os.Args[1]
	}
	s := &spawner{token: token, channel: openChannel(fd), events: make(chan func(), 256), running: map[int64]*command{}}
	s.journals = newJournals(s.post, s.exitWhenIdle)
	// The reader hands each message over in order: a kill never overtakes the run it is for.
	go s.channel.read(func(message request) { s.events <- func() { s.receive(message) } }, func() { s.events <- s.disconnected })
	for event := range s.events {
		event()
	}
}

// post hands the loop an event from the loop itself, which must not block on its own queue; such events (a group
// commit's next flush) need no order among themselves.
func (s *spawner) post(event func()) {
	go func() { s.events <- event }()
}

func (s *spawner) receive(message request) {
	switch message.Type {
	case "kill":
		if c := s.running[message.ID]; c != nil {
			c.kill()
		}
	case "run":
		s.run(message)
	}
}

func (s *spawner) run(r request) {
	c := newCommand(r, s)
	s.running[r.ID] = c
	if err := c.start(); err != nil {
		delete(s.running, r.ID)
		s.channel.send(map[string]any{"type": "error", "id": r.ID, "message": err.Error()})
		s.exitWhenIdle()
	}
}

// finished: the command's result goes to the worker, after its end is journaled (command.finish).
func (s *spawner) finished(c *command, result commandResult) {
	s.channel.send(map[string]any{"type": "result", "id": c.request.ID, "result": result})
	delete(s.running, c.request.ID)
	s.exitWhenIdle()
}

// disconnected: commands under way are never killed half-way; they finish, their outcome goes into the journal,
// and then the spawner exits.
func (s *spawner) disconnected() {
	s.orphaned = true
	s.exitWhenIdle()
}

// exitWhenIdle exits once orphaned, with nothing running and every journal's last ends committed.
func (s *spawner) exitWhenIdle() {
	if s.orphaned && len(s.running) == 0 && s.journals.open() == 0 {
		os.Exit(0)
	}
}

func warn(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "cutover: "+format+"\n", args...)
}
