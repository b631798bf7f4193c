# The peer of `logitflow bench cv`: R's cv.glmnet on the rows logitflow trained, standardised
# as logitflow standardises them (mean 0, population standard deviation 1; standardize = FALSE
# then), with the folds logitflow drew. Times cv.glmnet alone, after R has started and read the
# file, `rounds` times, and prints its seconds and the lambda it chose as JSON.
# Arguments: CSV, LABEL, POSITIVE, FEATURES (a file, one name a line), FOLDS (a file, one a
# line), ALPHA, ROUNDS.
suppressMessages(library(glmnet))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], check.names = FALSE)
features <- readLines(args[4])
foldid <- as.integer(readLines(args[5]))
alpha <- as.numeric(args[6])
rounds <- as.integer(args[7])
x <- as.matrix(d[, features])
y <- as.numeric(as.character(d[[args[2]]]) == args[3])
centred <- sweep(x, 2, colMeans(x))
x <- sweep(centred, 2, sqrt(colMeans(centred^2)), "/")
seconds <- numeric(rounds)
for (r in seq_len(rounds)) {
  seconds[r] <- system.time(fit <- cv.glmnet(x, y, family = "binomial", alpha = alpha, foldid = foldid,
                                             standardize = FALSE, type.measure = "deviance"))[["elapsed"]]
}
cat(sprintf('{"seconds":[%s],"lambdas":%d,"lambda_min":%.17g,"lambda_1se":%.17g,"glmnet":"%s"}\n',
            paste(sprintf("%.6f", seconds), collapse = ","), length(fit$lambda), fit$lambda.min, fit$lambda.1se,
            as.character(packageVersion("glmnet"))))
