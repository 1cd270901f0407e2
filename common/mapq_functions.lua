#!lua name=mapq1
