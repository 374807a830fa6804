module leaklessgoleak

go 1.19
