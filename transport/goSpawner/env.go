package main

import (
	"os"
	"strings"
)

// alwaysExcluded: the worker's Temporal connection (credentials among them) and its codec's keys and token. The
// rules are commandRunner.cjs's commandEnvironment, which says why.
var alwaysExcluded = []string{"TEMPORAL_*", "CUTOVER_CODEC_*"}

// excludes: `NAME` or `PREFIX*`.
func excludes(patterns []string, name string) bool {
	for _, pattern := range patterns {
		if prefix, ok := strings.CutSuffix(pattern, "*"); ok && strings.HasPrefix(name, prefix) || pattern == name {
			return true
		}
	}
	return false
}

// commandEnvironment is base without the Temporal settings, the names or patterns CUTOVER_COMMAND_ENV_EXCLUDE lists
// and withoutNames (the env: secrets the command's step resolved).
func commandEnvironment(base map[string]string, withoutNames []string) map[string]string {
	patterns := append([]string{}, alwaysExcluded...)
	for _, name := range strings.Split(base["CUTOVER_COMMAND_ENV_EXCLUDE"], ",") {
		if name = strings.TrimSpace(name); name != "" {
			patterns = append(patterns, name)
		}
	}
	patterns = append(patterns, withoutNames...)
	kept := make(map[string]string, len(base))
	for name, value := range base {
		if !excludes(patterns, name) {
			kept[name] = value
		}
	}
	return kept
}

// inherited is what every command inherits of the spawner's environment, which never changes: filtered once.
var inherited = func() map[string]string {
	own := map[string]string{}
	for _, entry := range os.Environ() {
		if name, value, ok := strings.Cut(entry, "="); ok && name != "NODE_CHANNEL_FD" && name != "NODE_CHANNEL_SERIALIZATION_MODE" {
			own[name] = value
		}
	}
	return commandEnvironment(own, nil)
}()

// environment is a command's: the inherited one without its step's secrets, then the transport's variables, then
// CUTOVER_HOST.
func environment(r request) []string {
	base := inherited
	if len(r.WithoutEnv) > 0 {
		base = commandEnvironment(inherited, r.WithoutEnv)
	}
	merged := make(map[string]string, len(base)+len(r.Env)+1)
	for name, value := range base {
		merged[name] = value
	}
	for name, value := range r.Env {
		merged[name] = value
	}
	merged["CUTOVER_HOST"] = r.Host
	list := make([]string, 0, len(merged))
	for name, value := range merged {
		list = append(list, name+"="+value)
	}
	return list
}
