package main

import (
	"os"
	"path/filepath"
	"syscall"
)

// journalEntry is a line of the journal (activities/journal.ts reads it): a host's start, or its end.
type journalEntry struct {
	Host       string  `json:"host"`
	Event      string  `json:"event"`
	Pid        int     `json:"pid,omitempty"`
	Token      string  `json:"token,omitempty"`
	Pgid       int     `json:"pgid,omitempty"`
	Until      int64   `json:"until,omitempty"`
	ExitCode   *int    `json:"exitCode,omitempty"`
	OutputTail *string `json:"outputTail,omitempty"`
}

// journal is one journal file, open (O_APPEND) for as long as one of its commands runs or waits for its commit.
type journal struct {
	file  *os.File
	users int
	// Just created: its first commit syncs its directory too, or a machine crash could lose the whole file.
	created bool
	// The group commit: an fsync under way, and the commands whose ends wait for the next one.
	syncing bool
	waiting []func()
}

type journals struct {
	byFile map[string]*journal
	post   func(func())
	// Called when the last journal closes: every end journaled is committed.
	closed func()
}

func newJournals(post func(func()), closed func()) *journals {
	return &journals{byFile: map[string]*journal{}, post: post, closed: closed}
}

func (j *journals) open() int {
	return len(j.byFile)
}

// enter: a command of path begins; the journal is opened if none of its commands has it open.
func (j *journals) enter(path string) {
	if path == "" {
		return
	}
	open := j.byFile[path]
	if open == nil {
		open = &journal{}
		if err := os.MkdirAll(filepath.Dir(path), 0o777); err != nil {
			warn("cannot open the journal %s: %v", path, err)
		} else if file, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666); err != nil {
			warn("cannot open the journal %s: %v", path, err)
		} else {
			info, statError := file.Stat()
			open.file, open.created = file, statError == nil && info.Size() == 0
		}
		j.byFile[path] = open
	}
	open.users++
}

// write appends one line. A failed write (a full disk) must not stop the spawner: the command goes on and the
// worker still hears its result; only a retry after a lost worker misses the line.
func (j *journals) write(path string, entry journalEntry) {
	open := j.byFile[path]
	if open == nil || open.file == nil {
		return
	}
	if _, err := open.file.Write(marshal(entry)); err != nil {
		warn("cannot journal %s of %s in %s: %v", entry.Event, entry.Host, path, err)
	}
}

// leave: a command of path is done with it (its end committed); the last one closes it.
func (j *journals) leave(path string) {
	open := j.byFile[path]
	if open == nil {
		return
	}
	if open.users--; open.users > 0 {
		return
	}
	delete(j.byFile, path)
	if open.file != nil {
		_ = open.file.Close()
	}
	if len(j.byFile) == 0 {
		j.closed()
	}
}

// commit calls then once the ends journaled so far are on disk. One fsync covers every end journaled while the one
// before it ran, so hosts finishing together cost one fsync, not one each; it runs off the loop, never blocking it.
// The result does not wait for it (commandRunner.cjs, commit, says why).
func (j *journals) commit(path string, then func()) {
	open := j.byFile[path]
	if open == nil {
		then()
		return
	}
	open.waiting = append(open.waiting, then)
	if !open.syncing {
		j.post(func() { j.flush(open) })
	}
}

func (j *journals) flush(open *journal) {
	if open.syncing || len(open.waiting) == 0 {
		return
	}
	batch := open.waiting
	open.waiting, open.syncing = nil, true
	done := func() {
		open.syncing = false
		for _, then := range batch {
			then()
		}
		if len(open.waiting) > 0 {
			j.post(func() { j.flush(open) })
		}
	}
	if open.file == nil {
		done()
		return
	}
	file, created := open.file, open.created
	open.created = false
	go func() {
		_ = file.Sync()
		if created {
			syncDirectory(filepath.Dir(file.Name()))
		}
		j.post(done)
	}()
}

// syncDirectory: a failure only leaves the new file less durable.
func syncDirectory(dir string) {
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return
	}
	_ = syscall.Fsync(fd)
	_ = syscall.Close(fd)
}
