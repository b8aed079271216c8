package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"sync"
)

// channel is the worker's IPC channel, which Node opens for a child started with 'ipc' in its stdio and names in
// NODE_CHANNEL_FD: one JSON message per line each way (Node's 'json' serialization).
type channel struct {
	file *os.File
	mu   sync.Mutex
}

func openChannel(fd int) *channel {
	return &channel{file: os.NewFile(uintptr(fd), "ipc")}
}

// read calls onMessage for each message, in order, and onClose when the worker closes its end (it exited, was
// killed, or let the spawner go). A line that is no message is skipped with a warning: only the worker writes here.
func (c *channel) read(onMessage func(request), onClose func()) {
	lines := bufio.NewScanner(c.file)
	// A command line may be long (an installer with its arguments, a secret substituted): up to 64 MiB.
	lines.Buffer(make([]byte, 64*1024), 64*1024*1024)
	for lines.Scan() {
		var message request
		if err := json.Unmarshal(lines.Bytes(), &message); err != nil {
			c.refuse(lines.Bytes(), err)
			continue
		}
		onMessage(message)
	}
	if err := lines.Err(); err != nil {
		// A line past 64 MiB: the spawner finishes what it runs and goes; the worker starts another.
		warn("the spawner stops reading its channel: %v", err)
	}
	onClose()
}

// refuse answers a run the spawner cannot read with an error, so the worker does not wait for it for ever; a line
// without even an id can only be skipped. Only the worker writes here, so either means a bug in it.
func (c *channel) refuse(line []byte, err error) {
	var run struct {
		Type string `json:"type"`
		ID   *int64 `json:"id"`
	}
	if json.Unmarshal(line, &run) == nil && run.Type == "run" && run.ID != nil {
		c.send(map[string]any{"type": "error", "id": *run.ID, "message": "the Go spawner cannot read this command: " + err.Error()})
		return
	}
	warn("the spawner skipped a message it cannot read: %v", err)
}

// send writes one message. It blocks while the worker does not read (Node's spawner would buffer instead); the
// loop waits with it, and goes on as soon as the worker reads again. The worker may be gone (a failed write: EPIPE); the spawner then goes on, so that it
// finishes and journals the commands under way.
func (c *channel) send(message any) {
	line := marshal(message)
	c.mu.Lock()
	defer c.mu.Unlock()
	_, _ = c.file.Write(line)
}

// marshal is one JSON line, with <, > and & as they are (a command's output, read by people in the journal).
func marshal(value any) []byte {
	var out bytes.Buffer
	encoder := json.NewEncoder(&out)
	encoder.SetEscapeHTML(false)
	if err := encoder.Encode(value); err != nil {
		// Only strings, numbers and booleans are marshalled: this cannot happen.
		panic(err)
	}
	return out.Bytes()
}
