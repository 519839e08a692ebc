module foureyes.dev/pause

go 1.26.0
