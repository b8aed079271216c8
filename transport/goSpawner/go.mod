module cutover/spawner

go 1.20
