module leaklessbench

go 1.19
